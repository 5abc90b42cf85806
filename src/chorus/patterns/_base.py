"""What composites share: how a pattern reports its answer and its decision."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from chorus.core.model import Model
from chorus.core.types import Completion, Span, Usage

__all__ = ["combine"]


def combine(
    pattern: Model,
    text: str,
    *,
    started: float,
    parts: Sequence[Completion],
    winner: Completion | None = None,
    failed: Iterable[Span] = (),
    attributes: dict[str, Any] | None = None,
    finish_reason: str | None = None,
    model: str | None = None,
) -> Completion:
    """A composite's Completion: ``text`` as the answer, usage and cost summed over
    every call in ``parts`` (losers included), their spans as children, the decision in
    ``attributes``. ``winner`` names the leaf whose text this is; its tool calls and
    token logprobs travel with the answer."""
    usage = Usage.total(p.usage for p in parts)
    cost = sum(p.cost_usd for p in parts)
    latency = time.perf_counter() - started
    children = [p.trace for p in parts if p.trace is not None]
    children.extend(failed)
    leaf = model or (winner.model if winner else pattern.name)
    span = Span(
        kind=pattern.kind,
        name=pattern.name,
        model=leaf,
        usage=usage,
        cost_usd=cost,
        latency_s=latency,
        start=time.time() - latency,
        attributes=attributes or {},
        children=children,
    )
    reason = finish_reason if finish_reason is not None else (
        winner.finish_reason if winner else "stop"
    )
    if winner is None:
        return Completion(text, leaf, usage, cost, latency, reason, span)
    return Completion(text, leaf, usage, cost, latency, reason, span, winner.logprob,
                      winner.tool_calls, winner.logprobs if text == winner.text else None)
