"""Making chorus's tracer and meter: a program's own OpenTelemetry providers when it set
some up, else chorus's, exporting over OTLP as the standard ``OTEL_*`` variables say.

chorus's own providers stay chorus's (they are not made global), export in batches from
a background thread, and flush at exit (``chorus.telemetry`` shuts them down then); a
collector that is down costs the requests nothing (the batch queue is bounded and drops
when full).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from chorus import __version__
from chorus.core.errors import ChorusError

__all__ = ["Providers", "user_providers", "own_providers"]

SCOPE = "chorus"
_BATCH = 64


class Providers:
    """A tracer and a meter, and what to shut down at the end (nothing, for a program's
    own providers)."""

    def __init__(self, tracer: trace.Tracer, meter: metrics.Meter | None,
                 owned: tuple[Any, ...] = (), processor: SpanProcessor | None = None,
                 resource: Resource | None = None) -> None:
        self.tracer, self.meter, self.owned = tracer, meter, owned
        #: chorus's own span processor and resource (None for a program's providers).
        self.processor, self.resource = processor, resource

    def flush(self, timeout_s: float = 5.0) -> None:
        _bounded([lambda p=p: p.force_flush(int(timeout_s * 1000)) for p in self.owned],
                 timeout_s)

    def shutdown(self, timeout_s: float = 5.0) -> None:
        _bounded([p.shutdown for p in self.owned], timeout_s)


def _bounded(steps: list[Any], timeout_s: float) -> None:
    # The SDK's flush and shutdown wait out each batch's export (10 s a batch, by default,
    # against a collector that never answers): run them aside and stop waiting on time,
    # so a dead collector cannot hold up the end of `chorus run`.
    def work() -> None:
        for step in steps:
            step()

    if not steps:
        return
    worker = threading.Thread(target=work, name="chorus-telemetry-flush", daemon=True)
    worker.start()
    worker.join(timeout_s)


def user_providers() -> Providers | None:
    """The program's own providers, when it installed a tracer provider."""
    found = trace.get_tracer_provider()
    if isinstance(found, trace.ProxyTracerProvider):
        return None
    tracer = found.get_tracer(SCOPE, __version__)
    meter_provider = metrics.get_meter_provider()
    meter = None if isinstance(meter_provider, metrics.NoOpMeterProvider) else \
        meter_provider.get_meter(SCOPE, __version__)
    return Providers(tracer, meter)


def _protocol(signal: str, given: str | None) -> str:
    proto = (os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL")
             or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or given or "http/protobuf")
    if proto not in ("http/protobuf", "grpc"):
        raise ChorusError(f"OTLP protocol {proto!r} is not supported: use http/protobuf "
                          "(or grpc with opentelemetry-exporter-otlp-proto-grpc installed)")
    return proto


def _endpoint(given: str | None, path: str, proto: str) -> str | None:
    # The exporters read OTEL_EXPORTER_OTLP_[SIGNAL_]ENDPOINT themselves; a YAML endpoint
    # is a base URL like the variable, so the signal's path goes on it here.
    if given is None or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return None
    return given if proto == "grpc" else given.rstrip("/") + path


def _exporters(endpoint: str | None, protocol: str | None, headers: dict[str, str],
               metrics_on: bool) -> tuple[SpanExporter | None, MetricExporter | None]:
    kinds = {s: os.environ.get(f"OTEL_{s}_EXPORTER", "otlp").strip().lower()
             for s in ("TRACES", "METRICS")}
    spans: SpanExporter | None = None
    meter: MetricExporter | None = None
    hdrs = headers or None
    if kinds["TRACES"] == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        spans = ConsoleSpanExporter()
    elif kinds["TRACES"] != "none":
        proto = _protocol("TRACES", protocol)
        if proto == "grpc":
            try:
                from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]
                    OTLPSpanExporter as GrpcSpans,
                )
            except ImportError:
                raise ChorusError("OTLP over grpc needs opentelemetry-exporter-otlp-proto-grpc"
                                  " installed (or set OTEL_EXPORTER_OTLP_PROTOCOL="
                                  "http/protobuf)") from None
            spans = GrpcSpans(endpoint=_endpoint(endpoint, "", proto), headers=hdrs)
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            spans = OTLPSpanExporter(endpoint=_endpoint(endpoint, "/v1/traces", proto),
                                     headers=hdrs)
    if metrics_on and kinds["METRICS"] not in ("none", "console"):
        proto = _protocol("METRICS", protocol)
        if proto == "http/protobuf":
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                OTLPMetricExporter,
            )

            meter = OTLPMetricExporter(endpoint=_endpoint(endpoint, "/v1/metrics", proto),
                                       headers=hdrs)
        else:
            try:
                from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (  # type: ignore[import-not-found,unused-ignore]
                    OTLPMetricExporter as GrpcMetrics,
                )
            except ImportError:
                raise ChorusError("OTLP over grpc needs opentelemetry-exporter-otlp-proto-grpc"
                                  " installed") from None
            meter = GrpcMetrics(endpoint=_endpoint(endpoint, "", proto), headers=hdrs)
    return spans, meter


def own_providers(*, endpoint: str | None = None, protocol: str | None = None,
                  service_name: str | None = None, headers: dict[str, str] | None = None,
                  metrics_on: bool = True, span_exporter: SpanExporter | None = None
                  ) -> Providers:
    """chorus's own providers, exporting over OTLP (``span_exporter`` instead, if given)."""
    attrs: dict[str, Any] = {"service.version": __version__}
    if not os.environ.get("OTEL_SERVICE_NAME"):
        attrs["service.name"] = service_name or "chorus"
    resource = Resource.create(attrs)
    if span_exporter is None:
        span_exporter, metric_exporter = _exporters(endpoint, protocol, headers or {},
                                                    metrics_on)
    else:
        metric_exporter = None
    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    processor: SpanProcessor | None = None
    if span_exporter is not None:
        # Small batches: encoding one holds the GIL, and a request waits that long.
        batch = None if os.environ.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") else _BATCH
        processor = BatchSpanProcessor(span_exporter, max_export_batch_size=batch)
        tracer_provider.add_span_processor(processor)
    owned: list[Any] = [tracer_provider]
    meter = None
    if metric_exporter is not None:
        meter_provider = MeterProvider(
            resource=resource, metric_readers=[PeriodicExportingMetricReader(metric_exporter)],
            shutdown_on_exit=False)
        owned.append(meter_provider)
        meter = meter_provider.get_meter(SCOPE, __version__)
    return Providers(tracer_provider.get_tracer(SCOPE, __version__), meter, tuple(owned),
                     processor, resource)
