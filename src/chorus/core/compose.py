"""What composites and wrappers are built from, written outside the package or in it.

A composite calls its children with ``call`` (or ``stream_or_complete``), reports its
answer and its decision with ``combine``, and, when it fails, raises an error carrying
its span (``with_trace``) so a parent's trace keeps every call made. A wrapper (a model
around exactly one other: cache, retry, budget ...) subclasses ``Wrapper``.

    class FirstNonEmpty(Model):
        kind = "first_non_empty"

        def __init__(self, name, models):
            super().__init__(name)
            self.models = list(models)

        def children(self):
            return self.models

        async def complete(self, request):
            started, parts, failed = time.perf_counter(), [], []
            for m in self.models:
                t0 = time.perf_counter()
                try:
                    out = await call(m, request)
                except ChorusError as exc:
                    failed.append(error_span(m, exc, t0))
                    continue
                parts.append(out)
                if out.text.strip():
                    return combine(self, out.text, started=started, parts=parts,
                                   winner=out, failed=failed)
            err = AllModelsFailed(self.name, {})
            raise with_trace(err, failed_span(self, err, failed))
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, ClassVar, TypeVar

from chorus.core.errors import ChorusError
from chorus.core.model import Model, StreamEvent, call, error_span, stream_or_complete
from chorus.core.types import Completion, Request, Span, Usage

__all__ = ["Wrapper", "call", "combine", "error_span", "failed_span", "stream_or_complete",
           "with_trace"]

E = TypeVar("E", bound=ChorusError)


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


def with_trace(error: E, span: Span) -> E:
    """``error`` carrying ``span`` as its ``trace`` (a composite's span at the failure,
    with the calls made before it), for ``error_span`` to put in the parent's trace."""
    error.trace = span
    return error


def failed_span(pattern: Model, error: ChorusError, children: Sequence[Span]) -> Span:
    """The span a composite leaves on the error it raises, so the trace keeps every try."""
    return Span(kind=pattern.kind, name=pattern.name, error=str(error), children=list(children))


class Wrapper(Model):
    """A Model around exactly one other, ``inner`` (its only child). By itself it passes
    every call straight through; a policy overrides ``complete`` (and ``stream``) to add
    what it does around the inner call."""

    can_stream: ClassVar[bool] = True

    def __init__(self, name: str, inner: Model) -> None:
        super().__init__(name)
        self.inner = inner

    def children(self) -> Sequence[Model]:
        return (self.inner,)

    async def complete(self, request: Request) -> Completion:
        return await call(self.inner, request)

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        async for event in stream_or_complete(self.inner, request):
            yield event
