"""Time limits that match how streams fail, for any leaf.

A stream fails in three ways a single read timeout cannot tell apart: it never starts
(``first_token_s``: from the call to its first piece, connecting included), it stops
mid-answer (``idle_s``: between two pieces), or it drags on (``total_s``: the whole
answer). Each limit that passes raises ``ProviderTimeout`` naming the limit, so a
fallback moves on at once instead of waiting out the transport's timeout.

A stream that fails after its first piece carries what it had sent on the error
(``ProviderError.partial``: the text, with estimated usage and its cost), so a fallback
can continue the answer on another model and bill both parts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from chorus.core.errors import ProviderError, ProviderTimeout
from chorus.core.model import StreamEvent
from chorus.core.types import Completion, TextDelta

__all__ = ["Limits", "NO_LIMITS", "paced", "within"]

T = TypeVar("T")
Event = StreamEvent


@dataclass(frozen=True, slots=True)
class Limits:
    """Seconds a leaf may take: to its first piece, between pieces, for the whole answer
    (None: no limit of that kind beyond the transport's own timeout)."""

    first_token_s: float | None = None
    idle_s: float | None = None
    total_s: float | None = None

    def next_wait(self, first: bool, deadline: float | None) -> tuple[float | None, str]:
        """How long the next piece may take, and which limit that is (for the error)."""
        limit, what = (self.first_token_s, "first_token_s") if first else (self.idle_s,
                                                                            "idle_s")
        if deadline is not None:
            left = max(deadline - time.monotonic(), 0.0)
            if limit is None or left < limit:
                return left, "total_s"
        return limit, what

    def __bool__(self) -> bool:
        return not (self.first_token_s is None and self.idle_s is None
                    and self.total_s is None)


NO_LIMITS = Limits()

_SAYS = {"first_token_s": "no first token", "idle_s": "no next piece",
         "total_s": "the answer did not finish"}


def _timeout(what: str, limits: Limits, model: str) -> ProviderTimeout:
    seconds = getattr(limits, what)
    return ProviderTimeout(f"{_SAYS[what]} within {seconds:g}s (`{what}:`)", model=model)


async def within(work: Awaitable[T], limits: Limits, *, model: str) -> T:
    """``work`` under the total limit (a whole answer, not streamed)."""
    if limits.total_s is None:
        return await work
    try:
        async with asyncio.timeout(limits.total_s):
            return await work
    except TimeoutError:
        raise _timeout("total_s", limits, model) from None


async def paced(events: AsyncIterator[Event], limits: Limits, *, model: str,
                partial: Callable[[str], Completion]) -> AsyncGenerator[Event, None]:
    """``events`` under ``limits``; an error after the first piece gets ``partial(text)``
    (the text sent so far, priced) as its ``partial``."""
    deadline = None if limits.total_s is None else time.monotonic() + limits.total_s
    parts: list[str] = []
    first = True
    try:
        while True:
            wait, what = limits.next_wait(first, deadline) if limits else (None, "")
            try:
                if wait is None:
                    event = await anext(events)
                else:
                    async with asyncio.timeout(wait):
                        event = await anext(events)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise _timeout(what, limits, model) from None
            first = False
            if isinstance(event, TextDelta):
                parts.append(event.text)
            yield event
    except ProviderError as exc:
        if parts and exc.partial is None:
            exc.partial = partial("".join(parts))
        raise
    finally:
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()
