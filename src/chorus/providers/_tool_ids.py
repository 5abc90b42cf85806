"""Tool-call ids rewritten into what a provider accepts (no I/O).

A conversation's tool history carries the ids of whichever model made each call. After a
fallback moves it to another provider, those ids may be refused: Anthropic takes only
``[A-Za-z0-9_-]`` and wants every ``tool_use`` id unique in the conversation; OpenAI takes
at most 40 characters; some servers leave ids empty or number them ``call_0`` in every
turn. Each provider's request mapping passes its messages through ``rewrite`` with its
own rule: an id it would refuse is replaced by a stable one, in the assistant's call and
in the ``tool`` message that answers it alike, so the history still pairs up.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chorus.core.types import Message

__all__ = ["ANTHROPIC", "OPENAI", "IdRule", "rewrite"]


@dataclass(frozen=True, slots=True)
class IdRule:
    """Which ids a provider accepts, and the prefix of the ones made for it."""

    accepts: Callable[[str], bool]
    prefix: str
    unique: bool = True  # whether an id may appear in one turn only

    def make(self, old: str, n: int) -> str:
        digest = hashlib.sha256(f"{n}:{old}".encode()).hexdigest()[:24]
        return f"{self.prefix}{digest}"


_ANTHROPIC_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
ANTHROPIC = IdRule(lambda i: _ANTHROPIC_ID.fullmatch(i) is not None, "toolu_")
OPENAI = IdRule(lambda i: 0 < len(i) <= 40, "call_")


def _has_tools(messages: Sequence[Message]) -> bool:
    return any(m.tool_calls or m.tool_call_id is not None for m in messages)


def rewrite(messages: Sequence[Message], rule: IdRule) -> Sequence[Message]:
    """``messages`` with every tool-call id ``rule`` refuses (or that repeats an earlier
    turn's) replaced, consistently between a call and its result."""
    if not _has_tools(messages):
        return messages
    used: set[str] = set()
    turn: dict[str, str] = {}  # this assistant turn's calls: old id -> id sent
    out: list[Message] = []
    for m in messages:
        if m.tool_calls:
            turn = {}
            calls = []
            for c in m.tool_calls:
                new = c.id
                if not rule.accepts(new) or (rule.unique and new in used) or new in turn.values():
                    new = rule.make(c.id, len(used))
                turn[c.id] = new
                used.add(new)
                calls.append(c if new == c.id else dataclasses.replace(c, id=new))
            m = dataclasses.replace(m, tool_calls=tuple(calls))
        elif m.role == "tool" and m.tool_call_id is not None:
            old = m.tool_call_id
            new = turn.get(old) or (old if rule.accepts(old) else rule.make(old, -1))
            if new != old:
                m = dataclasses.replace(m, tool_call_id=new)
        out.append(m)
    return out
