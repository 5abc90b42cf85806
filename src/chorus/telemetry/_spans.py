"""The instrument for a program's own OpenTelemetry providers: one span per model,
pattern and policy call made through the tracer API as the call runs, the GenAI client
metrics, and the ``traceparent`` sent upstream. (chorus's own providers get the cheaper
``_deferred.Deferred``.)

A span is made current while its call runs, so the spans of the calls below it (made
by the same ``call()``, in this task or in tasks it starts) become its children, and an
upstream HTTP request carries its id.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping, MutableMapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.propagate import extract, inject
from opentelemetry.trace import SpanKind, Status, StatusCode

from chorus.core.instrument import Inner
from chorus.core.model import Leaf, Model, StreamEvent
from chorus.core.types import Completion, Request
from chorus.telemetry._attributes import (
    Value,
    content_attributes,
    decision_attributes,
    failure_attributes,
    metric_attributes,
    model_request_attributes,
    model_response_attributes,
    pattern_request_attributes,
    span_name,
)

__all__ = ["Metrics", "Watcher"]

# The system a call belongs to (the name of the model at the top of the request), kept
# in the OpenTelemetry context so it travels with the current span.
_SYSTEM = otel_context.create_key("chorus.system")
# The GenAI conventions' advised buckets: tokens (powers of 4) and seconds.
_TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                  16777216, 67108864]
_SECOND_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24,
                   20.48, 40.96, 81.92]


class Metrics:
    def __init__(self, meter: metrics.Meter) -> None:
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}",
            description="Tokens used per model call, by type (input, output).",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS)
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s",
            description="Seconds each model call took.",
            explicit_bucket_boundaries_advisory=_SECOND_BUCKETS)
        self.cost = meter.create_counter(
            "chorus.client.cost", unit="USD",
            description="US dollars spent on model calls, by system and model.")

    def record(self, attrs: dict[str, Value], seconds: float,
               answer: Completion | None) -> None:
        labels = metric_attributes(attrs)
        self.duration.record(seconds, labels)
        if answer is None:
            return
        self.tokens.record(answer.usage.input_tokens, {**labels, "gen_ai.token.type": "input"})
        self.tokens.record(answer.usage.output_tokens,
                           {**labels, "gen_ai.token.type": "output"})
        if answer.cost_usd:
            self.cost.add(answer.cost_usd, labels)


class Watcher:
    """Spans (and metrics) for every ``call()``; see ``core.instrument.Instrument``."""

    def __init__(self, tracer: trace.Tracer, meter: metrics.Meter | None, *,
                 content: bool = False) -> None:
        self.tracer = tracer
        self.metrics = Metrics(meter) if meter is not None else None
        self.content = content

    def _start(self, model: Model, request: Request
               ) -> tuple[trace.Span, otel_context.Context, dict[str, Value]]:
        parent = otel_context.get_current()
        system = otel_context.get_value(_SYSTEM, parent)
        if not isinstance(system, str):
            system = model.name
            parent = otel_context.set_value(_SYSTEM, system, parent)
        leaf = isinstance(model, Leaf)
        attrs = (model_request_attributes(model, request, system) if leaf
                 else pattern_request_attributes(model, system))
        span = self.tracer.start_span(span_name(model), parent,
                                      kind=SpanKind.CLIENT if leaf else SpanKind.INTERNAL,
                                      attributes=attrs)
        return span, trace.set_span_in_context(span, parent), attrs

    def _answered(self, span: trace.Span, model: Model, request: Request, answer: Completion,
                  attrs: dict[str, Value], started: float) -> None:
        leaf = isinstance(model, Leaf)
        if leaf:
            out = model_response_attributes(model, answer)
            if self.metrics is not None:
                self.metrics.record({**attrs, **out}, time.perf_counter() - started, answer)
        else:
            out = decision_attributes(answer.trace) if answer.trace is not None else {
                "chorus.cost_usd": answer.cost_usd, "chorus.model": answer.model}
        if self.content:
            out.update(content_attributes(request, answer))
        span.set_attributes(out)
        span.end()

    def _failed(self, span: trace.Span, model: Model, request: Request, error: BaseException,
                attrs: dict[str, Value], started: float) -> None:
        out = failure_attributes(error)
        if self.content:
            out.update(content_attributes(request, None))
        span.set_attributes(out)
        if isinstance(error, GeneratorExit):  # the consumer stopped reading: not a failure
            span.end()
            return
        if isinstance(model, Leaf) and self.metrics is not None:
            self.metrics.record({**attrs, "error.type": out["error.type"]},
                                time.perf_counter() - started, None)
        cancelled = isinstance(error, BaseException) and not isinstance(error, Exception)
        span.set_status(Status(StatusCode.ERROR, "cancelled" if cancelled else str(error)))
        if not cancelled:
            span.record_exception(error)
        span.end()

    async def call(self, model: Model, request: Request, inner: Inner) -> Completion:
        span, ctx, attrs = self._start(model, request)
        started = time.perf_counter()
        token = otel_context.attach(ctx)
        try:
            answer = await inner(model, request)
        except BaseException as exc:
            self._failed(span, model, request, exc, attrs, started)
            raise
        finally:
            otel_context.detach(token)
        self._answered(span, model, request, answer, attrs, started)
        return answer

    async def stream(self, model: Model, request: Request,
                     events: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
        span, ctx, attrs = self._start(model, request)
        started = time.perf_counter()
        final: Completion | None = None
        try:
            while True:
                # Current only while the model's own code runs (each step), never across a
                # yield, where the consumer's code runs in its own context.
                token = otel_context.attach(ctx)
                try:
                    event = await anext(events)
                except StopAsyncIteration:
                    break
                finally:
                    otel_context.detach(token)
                if isinstance(event, Completion):
                    final = event
                yield event
        except BaseException as exc:
            self._failed(span, model, request, exc, attrs, started)
            raise
        finally:
            aclose: Any = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()
        if final is None:
            span.end()
        else:
            self._answered(span, model, request, final, attrs, started)

    def inject(self, headers: MutableMapping[str, str]) -> None:
        inject(headers)

    def join(self, headers: Mapping[str, str]) -> Callable[[], None]:
        token = otel_context.attach(extract(headers))
        return lambda: otel_context.detach(token)
