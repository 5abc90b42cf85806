"""OpenTelemetry export of every request's trace tree, with the GenAI conventions.

Switched on the way OpenTelemetry users expect: ``OTEL_EXPORTER_OTLP_ENDPOINT`` (and the
other standard ``OTEL_*`` variables) for ``chorus run``, ``chorus serve``, ``chorus
bench`` and any program that loads a config; a ``telemetry:`` block in the YAML; or
``enable()`` from Python. A program that set up OpenTelemetry itself gets chorus's spans
under its own providers. ``OTEL_SDK_DISABLED=true`` keeps it all off.

This module imports no OpenTelemetry: that happens only when telemetry is switched on
(the ``otel`` extra: ``pip install 'chorus-llm[otel]'``). docs/telemetry.md lists every
span, attribute and metric.
"""

from __future__ import annotations

import atexit
import os
import sys
from typing import Any

from chorus.core import instrument
from chorus.core.errors import ChorusError

__all__ = ["auto", "disable", "enable", "enabled", "flush"]

_providers: Any = None
_exit_hook = False
_TRUE = ("1", "true", "yes", "on")


def _env_on(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def enabled() -> bool:
    """Whether chorus is exporting spans now."""
    return instrument.active() is not None


def enable(*, endpoint: str | None = None, protocol: str | None = None,
           service_name: str | None = None, headers: dict[str, str] | None = None,
           content: bool | None = None, metrics: bool = True, span_exporter: Any = None,
           use_global: bool | None = None) -> None:
    """Export a span for every call from now on.

    With ``use_global`` (the default when a program already installed a tracer
    provider) the spans go to the program's own OpenTelemetry providers; else chorus
    makes its own, exporting over OTLP to ``endpoint`` (default: the ``OTEL_*``
    variables) or to ``span_exporter``. ``content`` records prompt and answer text
    (default: ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``, else off).
    """
    global _providers, _exit_hook
    try:
        from chorus.telemetry._deferred import Deferred
        from chorus.telemetry._setup import own_providers, user_providers
        from chorus.telemetry._spans import Watcher
    except ImportError as exc:
        raise ChorusError(f"telemetry needs OpenTelemetry ({exc.name} is missing): "
                          "pip install 'chorus-llm[otel]'") from None
    found = user_providers() if use_global is not False and span_exporter is None else None
    if found is None and use_global:
        raise ChorusError("telemetry: use_global was asked, but no OpenTelemetry tracer "
                          "provider is installed")
    providers = found or own_providers(endpoint=endpoint, protocol=protocol,
                                       service_name=service_name, headers=headers,
                                       metrics_on=metrics, span_exporter=span_exporter)
    if content is None:
        content = _env_on("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")
    disable()
    _providers = providers
    if not _exit_hook:
        atexit.register(disable)
        _exit_hook = True
    if providers.processor is not None and providers.resource is not None:
        # chorus's own providers: spans are made off the request path.
        watcher: Any = Deferred(providers.processor, providers.resource, providers.meter,
                                content=content)
    else:
        watcher = Watcher(providers.tracer, providers.meter, content=content)
    instrument.install(watcher)


def auto(*, enabled: bool | None = None, **options: Any) -> bool:
    """Switch telemetry on when the environment or a config asks for it: an OTLP
    endpoint in the ``OTEL_*`` variables, a program's own tracer provider, or
    ``enabled=True`` (a ``telemetry:`` block). Returns whether it is on."""
    if _env_on("OTEL_SDK_DISABLED") or enabled is False:
        disable()
        return False
    if instrument.active() is not None:
        return True
    asked = enabled is True or bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
    if not asked and "opentelemetry.trace" in sys.modules:
        # The program imported OpenTelemetry: use its providers if it installed some.
        from opentelemetry import trace

        asked = not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    if asked:
        enable(**options)
    return asked


def flush(timeout_s: float = 5.0) -> None:
    """Export what is queued now (chorus's own providers; a program flushes its own)."""
    watcher = instrument.active()
    drain = getattr(watcher, "drain", None)
    if drain is not None:
        drain()
    if _providers is not None:
        _providers.flush(timeout_s)


def disable(timeout_s: float = 5.0) -> None:
    """Stop making spans, and shut chorus's own providers down (flushing what is queued,
    for at most ``timeout_s`` seconds)."""
    global _providers
    watcher = instrument.active()
    instrument.install(None)
    close = getattr(watcher, "close", None)
    if close is not None:
        close()
    if _providers is not None:
        _providers.shutdown(timeout_s)
        _providers = None
