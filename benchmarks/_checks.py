"""Cascade check functions used by the benchmark configs (``function: _checks:NAME``)."""

from __future__ import annotations

from chorus.core.types import Completion, Request


def unanimous(request: Request, completion: Completion) -> float:
    """The share of voters behind the winning answer of a ``vote`` stage (1.0 when all
    agree), read from the vote's tally in the trace; 0 when there is no tally."""
    span = completion.trace
    tally = span.attributes.get("tally") if span is not None else None
    if not isinstance(tally, dict) or not tally:
        return 0.0
    return max(float(row.get("share", 0.0)) for row in tally.values())
