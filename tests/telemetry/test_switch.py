"""How telemetry is switched on and off: the OTEL_* variables, the telemetry: block, a
program's own providers; off, nothing of OpenTelemetry is imported."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from chorus import telemetry
from chorus.config import Config
from chorus.core.errors import ConfigError
from chorus.core.model import call
from chorus.core.types import Request
from tests.conftest import free_port
from tests.telemetry._systems import SYSTEMS_YAML


@pytest.fixture(autouse=True)
def _off(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                 "OTEL_SDK_DISABLED", "OTEL_SERVICE_NAME"):
        monkeypatch.delenv(name, raising=False)
    yield
    telemetry.disable()


def test_off_by_default_and_chorus_imports_no_opentelemetry() -> None:
    # (Other packages may import OpenTelemetry themselves: redis-py does when it is there.)
    code = ("import sys, chorus; chorus.load().get('router');"
            "print([m for m in sys.modules if m.startswith(('chorus.telemetry.',"
            " 'opentelemetry.exporter'))], chorus.telemetry.enabled())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})
    assert out.stdout.split() == ["[]", "False"]


def test_the_otlp_endpoint_variable_switches_it_on_and_sdk_disabled_off(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    Config.from_text(SYSTEMS_YAML)
    assert telemetry.enabled()
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    Config.from_text(SYSTEMS_YAML)
    assert not telemetry.enabled()


def test_a_telemetry_block_switches_it_on_and_a_bad_one_names_its_line() -> None:
    Config.from_text(SYSTEMS_YAML + f"""
telemetry:
  endpoint: http://127.0.0.1:{free_port()}
  enabled: true
""")
    assert telemetry.enabled()
    telemetry.disable()
    with pytest.raises(ConfigError, match="telemetry.protocol"):
        Config.from_text(SYSTEMS_YAML + "telemetry: {enabled: true, protocol: http/json}\n")


def test_a_program_with_its_own_provider_gets_the_spans_there(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry import trace

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    # The global provider can be set once per process; the test sets it the way
    # set_tracer_provider does, and puts the proxy back after.
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    cfg = Config.from_text(SYSTEMS_YAML)
    assert telemetry.enabled()
    tracer = trace.get_tracer("the-program")
    with tracer.start_as_current_span("handle request") as outer:
        asyncio.run(call(cfg.get("router"), Request.of("2+2?")))
    telemetry.disable()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    router = spans["router router"]
    assert router.parent is not None and router.parent.span_id == outer.get_span_context().span_id
    assert {"chat clf", "chat solver"} <= set(spans)


async def test_a_dead_collector_neither_slows_nor_fails_requests() -> None:
    # A collector that takes the connection and never answers: the exporter waits on it
    # in its own thread, the requests go on.
    import socket

    sink = socket.socket()
    sink.bind(("127.0.0.1", 0))
    sink.listen(64)
    try:
        telemetry.enable(endpoint=f"http://127.0.0.1:{sink.getsockname()[1]}",
                         metrics=False)
        model = Config.from_text(SYSTEMS_YAML).get("vote")
        slowest = 0.0
        for _ in range(300):  # more than a batch (512 spans): the exporter is stuck
            t = time.perf_counter()
            answer = await call(model, Request.of("Capital?"))
            slowest = max(slowest, time.perf_counter() - t)
            assert answer.text == "Paris"
        # The exporter's timeout is 10 s: no request waited on it.
        assert slowest < 2.0
    finally:
        telemetry.disable(0.1)  # the stuck export goes on in its own (daemon) thread
        sink.close()
