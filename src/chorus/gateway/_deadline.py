"""The deadline of one gateway request: the gateway's own, tightened to the caller's.

A fallback shares the deadline out among its attempts so that its last model gets a turn;
that only helps the caller when the deadline is the caller's. A caller says it with
``x-chorus-deadline-s``; the official OpenAI SDKs send ``x-stainless-read-timeout``, which
for an answer that is not streamed (nothing arrives before the whole answer) is the
caller's deadline too. A stream's read timeout bounds only the wait between pieces, so
it is not taken as a deadline.
"""

from __future__ import annotations

from chorus.gateway.openai_wire import WireError

__all__ = ["caller_deadline"]


def _seconds(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if 0 < value < 1e9 else None


def caller_deadline(chorus: str | None, sdk: str | None, *, stream: bool,
                    limit: float | None) -> float | None:
    """Seconds the request may take: ``limit`` (the gateway's), or less when the caller's
    own deadline is shorter, less a margin for the reply's way back (5%, at most 1 s)."""
    if chorus is not None:
        seconds = _seconds(chorus)
        if seconds is None:
            raise WireError(400, f"x-chorus-deadline-s: {chorus[:40]!r} is not a positive "
                            "number of seconds", code="invalid_header")
    elif sdk is not None and not stream:
        seconds = _seconds(sdk)  # not chorus's header: an odd value is the SDK's business
        if seconds is None:
            return limit
    else:
        return limit
    seconds -= min(1.0, seconds * 0.05)
    return seconds if limit is None else min(limit, seconds)
