"""The instrument for chorus's own providers: a call only notes its ids and times, and a
background thread turns the notes into spans and metrics.

On the request path a call costs a context variable set and reset, two clock reads and
a deque append; building attributes, spans and metric points (what makes the
OpenTelemetry SDK's spans dear in Python) happens in the thread, which hands finished
spans to the batch processor. The deque is bounded: when the thread falls behind, the
oldest notes go, never a request's time.
"""

from __future__ import annotations

import collections
import logging
import random
import re
import threading
import time
import traceback
from collections.abc import AsyncIterator, Callable, Mapping, MutableMapping
from contextvars import ContextVar
from typing import Any, NamedTuple

from opentelemetry import metrics
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from chorus import __version__
from chorus.core.instrument import Inner
from chorus.core.model import Leaf, Model, StreamEvent
from chorus.core.types import Completion, Request
from chorus.telemetry._attributes import (
    Value,
    content_attributes,
    decision_attributes,
    failure_attributes,
    model_request_attributes,
    model_response_attributes,
    pattern_request_attributes,
    span_name,
)
from chorus.telemetry._spans import Metrics

__all__ = ["Deferred"]

log = logging.getLogger("chorus.telemetry")

_MAX_NOTES = 20_000
_TICK_S = 0.05
_YIELD_EVERY = 16
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")


# The current call: (trace id, span id, sampled, the system at the top, whether the
# span is a remote caller's). Plain tuples: one is made for every call.
_Here = tuple[int, int, bool, "str | None", bool]


class _Note(NamedTuple):
    """One finished call, as the thread reads it (made with ``tuple.__new__``)."""

    model: Model
    request: Request
    answer: Completion | None
    error: BaseException | None
    trace_id: int
    span_id: int
    parent: _Here | None
    system: str
    start_ns: int
    end_ns: int


_here: ContextVar[_Here | None] = ContextVar("chorus_telemetry_span", default=None)
_ids = random.Random()


class Deferred:
    """Spans (and metrics) for every ``call()``; see ``core.instrument.Instrument``."""

    def __init__(self, processor: SpanProcessor, resource: Resource,
                 meter: metrics.Meter | None, *, content: bool = False) -> None:
        self.processor, self.resource, self.content = processor, resource, content
        self.metrics = Metrics(meter) if meter is not None else None
        self.scope = InstrumentationScope("chorus", __version__)
        self.notes: collections.deque[_Note] = collections.deque(maxlen=_MAX_NOTES)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chorus-telemetry",
                                        daemon=True)
        self._thread.start()

    # -- the request path ----------------------------------------------------------------

    def _enter(self, model: Model) -> tuple[_Here | None, _Here]:
        # Plain tuples built in place: this runs for every call.
        parent = _here.get()
        if parent is None:
            return None, (_ids.getrandbits(128) or 1, _ids.getrandbits(64) or 1, True,
                          model.name, False)
        return parent, (parent[0], _ids.getrandbits(64) or 1, parent[2],
                        parent[3] or model.name, False)

    def _note(self, model: Model, request: Request, answer: Completion | None,
              error: BaseException | None, parent: _Here | None, me: _Here,
              start_ns: int) -> None:
        if me[2]:
            self.notes.append(tuple.__new__(_Note, (
                model, request, answer, error, me[0], me[1], parent, me[3] or model.name,
                start_ns, time.time_ns())))

    async def call(self, model: Model, request: Request, inner: Inner) -> Completion:
        parent, me = self._enter(model)
        token = _here.set(me)
        start = time.time_ns()
        try:
            answer = await inner(model, request)
        except BaseException as exc:
            self._note(model, request, None, exc, parent, me, start)
            raise
        finally:
            _here.reset(token)
        self._note(model, request, answer, None, parent, me, start)
        return answer

    async def stream(self, model: Model, request: Request,
                     events: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
        parent, me = self._enter(model)
        start = time.time_ns()
        final: Completion | None = None
        try:
            while True:
                # Current only while the model's own code runs, never across a yield.
                token = _here.set(me)
                try:
                    event = await anext(events)
                except StopAsyncIteration:
                    break
                finally:
                    _here.reset(token)
                if isinstance(event, Completion):
                    final = event
                yield event
        except GeneratorExit:
            self._note(model, request, final, None, parent, me, start)
            raise
        except BaseException as exc:
            self._note(model, request, None, exc, parent, me, start)
            raise
        finally:
            aclose: Any = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()
        self._note(model, request, final, None, parent, me, start)

    def inject(self, headers: MutableMapping[str, str]) -> None:
        me = _here.get()
        if me is not None:
            headers["traceparent"] = f"00-{me[0]:032x}-{me[1]:016x}-{'01' if me[2] else '00'}"

    def join(self, headers: Mapping[str, str]) -> Callable[[], None]:
        found = _TRACEPARENT.match(headers.get("traceparent", "").strip().lower())
        if found is None or found.group(1) == "ff":
            return _nothing
        trace_id, span_id = int(found.group(2), 16), int(found.group(3), 16)
        if not (trace_id and span_id):
            return _nothing
        sampled = bool(int(found.group(4), 16) & 1)
        token = _here.set((trace_id, span_id, sampled, None, True))
        return lambda: _here.reset(token)

    # -- the background thread -----------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.wait(_TICK_S):
            self.drain()

    def drain(self) -> None:
        """Turn every note so far into its span and metric points."""
        with self._lock:
            done = 0
            while self.notes:
                note = self.notes.popleft()
                done += 1
                if done % _YIELD_EVERY == 0:
                    time.sleep(0)  # let the event loop's thread have the GIL
                try:
                    self._export(note)
                except Exception:  # noqa: BLE001 - a bad note must not stop the thread
                    log.exception("chorus telemetry: could not export the span of %r",
                                  note.model.name)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1.0)
        self.drain()

    def _export(self, n: _Note) -> None:
        model = n.model
        leaf = isinstance(model, Leaf)
        attrs: dict[str, Value] = (model_request_attributes(model, n.request, n.system)
                                   if leaf else pattern_request_attributes(model, n.system))
        events: list[Event] = []
        status = Status(StatusCode.UNSET)
        if n.answer is not None:
            if leaf:
                attrs.update(model_response_attributes(model, n.answer))
            elif n.answer.trace is not None:
                attrs.update(decision_attributes(n.answer.trace))
            else:
                attrs.update({"chorus.cost_usd": n.answer.cost_usd,
                              "chorus.model": n.answer.model})
        elif n.error is not None:
            attrs.update(failure_attributes(n.error))
            if isinstance(n.error, Exception):
                status = Status(StatusCode.ERROR, str(n.error))
                events.append(_exception_event(n.error, n.end_ns))
            else:
                status = Status(StatusCode.ERROR, "cancelled")
        if self.content:
            attrs.update(content_attributes(n.request, n.answer))
        p = n.parent
        span = ReadableSpan(
            span_name(model),
            context=SpanContext(n.trace_id, n.span_id, False, _SAMPLED),
            parent=None if p is None else SpanContext(p[0], p[1], p[4], _SAMPLED),
            resource=self.resource, attributes=attrs, events=events,
            kind=SpanKind.CLIENT if leaf else SpanKind.INTERNAL, status=status,
            start_time=n.start_ns, end_time=n.end_ns, instrumentation_scope=self.scope)
        self.processor.on_end(span)
        if leaf and self.metrics is not None:
            self.metrics.record(attrs, (n.end_ns - n.start_ns) / 1e9, n.answer)


def _nothing() -> None:
    return None


def _exception_event(error: BaseException, at_ns: int) -> Event:
    return Event("exception", {
        "exception.type": f"{type(error).__module__}.{type(error).__qualname__}",
        "exception.message": str(error),
        "exception.stacktrace": "".join(traceback.format_exception(error)),
        "exception.escaped": "False",
    }, at_ns)
