"""What the hierarchical patterns (planner, supervisor) share: grouped spans for the
parts of a run (plan, steps, rounds, reviews), the calls kept from a failed structured
ask, and telling a failure of the whole request from a failure of one call.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from chorus.core import context
from chorus.core.compose import combine
from chorus.core.errors import ChorusError, DeadlineExceeded
from chorus.core.model import Model
from chorus.core.types import Completion, Span, Usage

__all__ = ["calls_of", "error_trace", "group_span", "request_is_over",
           "with_children"]


def group_span(kind: str, name: str, completions: Sequence[Completion],
               failed: Iterable[Span] = (), attributes: dict[str, Any] | None = None,
               error: str | None = None) -> Span:
    """A span named for a part of a pattern (a step, the plan, a review) holding the
    spans of the calls made for it; usage and cost summed over them."""
    children = [c.trace for c in completions if c.trace is not None] + list(failed)
    latency = sum(c.latency_s for c in children)
    return Span(
        kind=kind, name=name,
        model=completions[-1].model if completions else None,
        usage=Usage.total(c.usage for c in completions),
        cost_usd=sum(c.cost_usd for c in completions),
        latency_s=latency, start=min((c.start for c in children), default=time.time()),
        attributes=attributes or {}, children=children, error=error,
    )


def request_is_over(exc: ChorusError) -> bool:
    """Whether ``exc`` ends the whole request (its deadline passed, or it was
    cancelled) rather than just the one call; a child's own shorter timeout is not."""
    if isinstance(exc, DeadlineExceeded):
        left = context.remaining()
        return left is not None and left <= 0
    return context.current().is_cancelled


def error_trace(model: Model, started: float, parts: Sequence[Completion],
                children: list[Span], attributes: dict[str, Any]) -> Span:
    """The pattern's span for an error raised after some calls were made."""
    return with_children(combine(model, "", started=started, parts=parts,
                                 attributes=attributes), children).trace or Span(
        kind=model.kind, name=model.name)


def with_children(out: Completion, children: list[Span]) -> Completion:
    """``out`` with its span's children replaced: combine() nests the raw call spans,
    the hierarchical patterns show them grouped (plan, steps, synthesis; rounds)."""
    if out.trace is not None:
        out.trace.children = children
    return out


def calls_of(exc: BaseException) -> list[Completion]:
    """The calls ``ask_json`` made before it gave up (kept for usage and the trace)."""
    made = getattr(exc, "completions", None)
    return list(made) if isinstance(made, list) else []
