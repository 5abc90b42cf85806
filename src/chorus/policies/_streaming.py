"""How the policy wrappers drive their inner model's stream: opened through
``stream_or_complete`` (so a leaf under a budget is charged), closed whatever happens,
and, for the budget, run with the wrapper's context values in force.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from chorus.core.context import scope
from chorus.core.errors import MalformedResponse
from chorus.core.model import Model, StreamEvent, stream_or_complete
from chorus.core.types import Completion, Request, TextDelta, ToolCallDelta

__all__ = ["Events", "Relay", "aclose", "final_of", "open_stream"]

Events = AsyncGenerator[StreamEvent, None]


async def aclose(events: AsyncIterator[Any]) -> None:
    """Close a stream now (an abandoned async generator is only closed by the GC)."""
    close = getattr(events, "aclose", None)
    if close is not None:
        await close()


def open_stream(model: Model, request: Request, **values: Any) -> Events:
    """``model``'s stream; with ``values``, each step runs inside ``scope(**values)``.

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


def final_of(final: Completion | None, model: Model) -> Completion:
    """The stream's final Completion; a stream that ended without one is malformed."""
    if final is None:
        raise MalformedResponse("the stream ended without a final completion",
                                model=model.name)
    return final


class Relay:
    """Iterates a stream's text pieces, keeping its final Completion aside (``final``)
    and noting whether any piece was passed on (``sent``). A plain iterator, not a
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
    def final(self) -> Completion:
        """The final Completion; a stream that ended without one is malformed."""
        return final_of(self._final, self.model)
