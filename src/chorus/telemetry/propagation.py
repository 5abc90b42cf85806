"""The W3C trace context across process boundaries: a server continuing its caller's
trace. (Calls upstream carry theirs through ``core.instrument.outgoing_headers``.)"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from opentelemetry import context as otel_context
from opentelemetry.propagate import extract

__all__ = ["join"]


def join(headers: Mapping[str, str]) -> Callable[[], None]:
    """Make the trace named in ``headers`` (``traceparent``, ``tracestate``) current for
    the code that follows; call what this returns to leave it."""
    token = otel_context.attach(extract(headers))

    def leave() -> None:
        otel_context.detach(token)

    return leave
