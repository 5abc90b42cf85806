"""The one place an observer of model calls plugs in (``chorus.telemetry`` when it is
switched on). Core knows only this small protocol, never OpenTelemetry.

With nothing installed every hook is a module-global lookup that finds ``None``, so
``call()`` and the gateway pay nothing measurable for telemetry that is off.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Protocol

from chorus.core.types import Completion, Request

if TYPE_CHECKING:
    from chorus.core.model import Model, StreamEvent

__all__ = ["Instrument", "active", "install", "outgoing_headers"]

Inner = Callable[["Model", Request], Awaitable[Completion]]


class Instrument(Protocol):
    """Watches each model call: the span around it, the headers sent upstream."""

    async def call(self, model: Model, request: Request, inner: Inner) -> Completion:
        """Run ``inner(model, request)`` inside this call's span."""

    def stream(self, model: Model, request: Request,
               events: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
        """``events`` (a model's stream) inside this call's span."""

    def inject(self, headers: MutableMapping[str, str]) -> None:
        """Add the propagation headers (``traceparent``) for the current call."""

    def join(self, headers: Mapping[str, str]) -> Callable[[], None]:
        """Continue the trace ``headers`` name (an incoming ``traceparent``) in the calls
        that follow; returns what undoes that."""


_active: Instrument | None = None


def install(instrument: Instrument | None) -> None:
    """Make ``instrument`` watch every call from now on (None: stop watching)."""
    global _active
    _active = instrument


def active() -> Instrument | None:
    return _active


def outgoing_headers(headers: MutableMapping[str, str]) -> None:
    """Add the current call's propagation headers to an upstream request's ``headers``
    (nothing when no instrument is installed)."""
    if _active is not None:
        _active.inject(headers)
