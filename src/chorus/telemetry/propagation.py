"""The W3C trace context across process boundaries: a server continuing its caller's
trace. (Calls upstream carry theirs through ``core.instrument.outgoing_headers``.)"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from chorus.core import instrument

__all__ = ["join"]


def join(headers: Mapping[str, str]) -> Callable[[], None]:
    """Make the trace named in ``headers`` (``traceparent``) current for the calls that
    follow; call what this returns to leave it. Nothing happens with telemetry off."""
    active = instrument.active()
    if active is None:
        return lambda: None
    return active.join(headers)
