"""What composites and wrappers are built from, written outside the package or in it.

A composite calls its children with ``call`` (or ``stream_or_complete``), reports its
answer and its decision with ``combine``, and, when it fails, raises an error carrying
its span (``with_trace``) so a parent's trace keeps every call made. A wrapper (a model
around exactly one other: cache, retry, budget ...) subclasses ``Wrapper`` and states only
what it does around the inner call (``Wrapper``'s steps); ``complete`` and ``stream``
are the base's.

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

import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Sequence
from typing import Any, ClassVar, Generic, cast

from typing_extensions import TypeVar

from chorus.core.context import scope
from chorus.core.errors import ChorusError, MalformedResponse
from chorus.core.model import Model, StreamEvent, call, error_span, stream_or_complete
from chorus.core.types import Completion, Request, Span, TextDelta, ToolCallDelta, Usage

__all__ = ["Relay", "Wrapper", "aclose", "call", "combine", "error_span", "failed_span",
           "open_stream", "raise_if_sent", "replay_pieces", "stream_or_complete", "with_trace"]

E = TypeVar("E", bound=ChorusError)
#: A wrapper's state for one call (``Wrapper.enter`` makes it; the other steps get it).
S = TypeVar("S", default=Any)
Events = AsyncGenerator[StreamEvent, None]


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
    every call in ``parts`` (losers included) and over the spans of children that failed
    after spending (a vote whose answers held no label, a pipeline that failed at its
    second step), their spans as children, the decision in ``attributes``. ``winner``
    names the leaf whose text this is; its tool calls and token logprobs travel with the
    answer."""
    failed = list(failed)
    usage = Usage.total([*(p.usage for p in parts), *(s.usage for s in failed)])
    cost = sum(p.cost_usd for p in parts) + sum(s.cost_usd for s in failed)
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
    """The span a composite leaves on the error it raises, so the trace keeps every try;
    its usage and cost are those of the calls below it (a parent counts them)."""
    return Span(kind=pattern.kind, name=pattern.name, error=str(error), children=list(children),
                usage=Usage.total(c.usage for c in children),
                cost_usd=sum(c.cost_usd for c in children))


# -- streams -----------------------------------------------------------------------------


async def aclose(events: AsyncIterator[Any]) -> None:
    """Close a stream now (an abandoned async generator is only closed by the GC)."""
    close = getattr(events, "aclose", None)
    if close is not None:
        await close()


def open_stream(model: Model, request: Request, **values: Any) -> Events:
    """``model``'s stream (``stream_or_complete``); with ``values``, each step runs inside
    ``scope(**values)``.

    The scope is entered around each step rather than across the ``yield``s: a context
    variable set inside an async generator would leak into the consumer between
    pieces, and could not be reset when the consumer steps it from another task.
    """
    events: Events = stream_or_complete(model, request)
    return _scoped(events, values) if values else events


async def _scoped(events: Events, values: dict[str, Any]) -> Events:
    try:
        while True:
            with scope(**values):
                try:
                    event = await anext(events)
                except StopAsyncIteration:
                    return
            yield event
    finally:
        with scope(**values):
            await events.aclose()


class Relay:
    """Iterates a stream's pieces, keeping its final Completion aside (``final``) and
    noting whether any piece was passed on (``sent``). A plain iterator, not a
    generator: there is nothing of its own to close; the caller closes ``events``."""

    def __init__(self, events: AsyncIterator[StreamEvent], model: Model) -> None:
        self.events, self.model = events, model
        self.sent = False
        self._final: Completion | None = None

    def __aiter__(self) -> Relay:
        return self

    async def __anext__(self) -> TextDelta | ToolCallDelta:
        while True:
            event = await anext(self.events)  # StopAsyncIteration ends the relay
            if isinstance(event, Completion):
                self._final = event
                continue
            self.sent = True
            return event

    @property
    def received(self) -> Completion | None:
        """The final Completion once the stream has sent it, else None."""
        return self._final

    @property
    def final(self) -> Completion:
        """The final Completion; a stream that ended without one is malformed."""
        if self._final is None:
            raise MalformedResponse("the stream ended without a final completion",
                                    model=self.model.name)
        return self._final


def raise_if_sent(error: ChorusError, sent: bool, *, note: str | None = None) -> None:
    """A composite's stream may try its next child after ``error`` only while nothing of
    the failed stream was passed on: a stream under way cannot be taken back. When
    ``sent``, ``error`` is raised here (with ``note`` added, when given); otherwise this
    returns and the caller goes on to its next child. Call it in the ``except`` block.

        except ChorusError as exc:
            raise_if_sent(exc, relay.sent)
            failed.append(error_span(child, exc, t0))  # and try the next child
    """
    if sent:
        if note is not None:
            error.add_note(note)
        raise error


def replay_pieces(text: str) -> list[str]:
    """A whole text cut into word-sized deltas, as a live stream would send it."""
    return re.findall(r"\s*\S+|\s+$", text) or [text]


# -- wrappers ----------------------------------------------------------------------------


class Wrapper(Model, Generic[S]):
    """A Model around exactly one other, ``inner`` (its only child).

    ``complete`` and ``stream`` run the same steps; a policy overrides the ones it needs
    (by itself a wrapper passes every call straight through):

    1. ``enter``: before the inner model is called (admit, reserve, look up); raise to
       refuse. Its result, the state ``S`` of this call, goes to the other steps.
    2. ``own_answer``: an answer given without calling the inner model (a cache hit);
       a stream sends it as word-sized pieces.
    3. the inner call, ``call`` or its stream, in ``inner_scope``'s context values.
    4. ``failed`` when it raises a ``ChorusError`` (True: call it again; ``sent`` says
       whether a stream had passed a piece on), ``abandoned`` when it is cancelled,
       raises anything else, or the consumer closes the stream early.
    5. ``answered``: the wrapper's Completion from the inner one.

    A wrapper whose stream is not this shape (one that edits the pieces) overrides
    ``stream`` itself, with ``open_stream`` and ``Relay``.
    """

    can_stream: ClassVar[bool] = True

    def __init__(self, name: str, inner: Model) -> None:
        super().__init__(name)
        self.inner = inner

    def children(self) -> Sequence[Model]:
        return (self.inner,)

    # -- the steps (a policy overrides these) ---------------------------------------------

    async def enter(self, request: Request, started: float) -> S:
        """Before the inner call; the call's state. ``started``: ``perf_counter()`` at
        the wrapper's start, for its span."""
        return cast(S, None)

    def own_answer(self, state: S, started: float) -> Completion | None:
        """An answer without the inner call, or None to call it."""
        return None

    def inner_scope(self, state: S) -> dict[str, Any]:
        """Context values (``scope``) the inner call runs with."""
        return {}

    async def failed(self, state: S, error: ChorusError, started: float,
                     inner_started: float, sent: bool) -> bool:
        """The inner call raised ``error`` (``inner_started``: when that call began);
        True calls the inner model again, False lets ``error`` propagate (give it the
        wrapper's span first, ``with_trace``)."""
        return False

    async def abandoned(self, state: S) -> None:
        """The inner call was cancelled, raised something other than a ChorusError, or
        its stream was closed early; the exception propagates after this."""

    async def answered(self, state: S, answer: Completion, started: float) -> Completion:
        """The wrapper's Completion for the inner model's ``answer``."""
        return answer

    # -- the two ways in -----------------------------------------------------------------

    async def complete(self, request: Request) -> Completion:
        started = time.perf_counter()
        state = await self.enter(request, started)
        own = self.own_answer(state, started)
        if own is not None:
            return own
        values = self.inner_scope(state)
        while True:
            t0 = time.perf_counter()
            try:
                if values:
                    with scope(**values):
                        answer = await call(self.inner, request)
                else:
                    answer = await call(self.inner, request)
            except ChorusError as exc:
                if await self.failed(state, exc, started, t0, False):
                    continue
                raise
            except BaseException:
                await self.abandoned(state)
                raise
            return await self.answered(state, answer, started)

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        """``complete``, streamed: the inner stream's pieces pass on as they come; the
        last event is ``answered``'s Completion."""
        started = time.perf_counter()
        state = await self.enter(request, started)
        own = self.own_answer(state, started)
        if own is not None:
            for text in replay_pieces(own.text):
                yield TextDelta(text, own.model)
            for i, c in enumerate(own.tool_calls):
                yield ToolCallDelta(i, c.id, c.name, c.arguments)
            yield own
            return
        values = self.inner_scope(state)
        while True:
            t0 = time.perf_counter()
            events = open_stream(self.inner, request, **values)
            relay = Relay(events, self.inner)
            try:
                async for piece in relay:
                    yield piece
                final = relay.final
            except ChorusError as exc:
                if await self.failed(state, exc, started, t0, relay.sent):
                    continue
                raise
            except BaseException:  # cancelled, or the consumer stopped early
                await self.abandoned(state)
                raise
            finally:
                await events.aclose()
            yield await self.answered(state, final, started)
            return
