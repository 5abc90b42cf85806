"""The Check contract: what one guardrail check is, what it finds, and how the wrapper
orders checks (cheap first; independent checks together; fixes one after another).

A check looks at the request (input stage) or the answer's text (output stage) and
returns a ``Finding`` or None. What happens to a finding is the check's ``action``:
``block`` raises GuardrailViolation, ``fix`` replaces the text (redact, repair),
``reask`` asks the inner model again (output only), ``flag`` only records it.
A model-based check calls its model through ``ask``/``ask_json`` so the wrapper sees
those calls: they become child spans and their cost counts.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal, TypeVar

from chorus.core.errors import MalformedResponse
from chorus.core.model import Model, call
from chorus.core.structured import ask_json as _ask_json
from chorus.core.types import Completion, Message, Request, Role, TextPart

__all__ = [
    "ACTIONS",
    "Action",
    "CHEAP",
    "Check",
    "EMBEDDING",
    "Finding",
    "Hit",
    "MODEL",
    "Stage",
    "Subject",
    "TextCheck",
    "ask",
    "ask_json",
    "note",
    "Record",
    "plan",
    "recording",
]

Stage = Literal["input", "output"]
Action = Literal["block", "fix", "reask", "flag"]
ACTIONS: Final = ("block", "fix", "reask", "flag")
#: What a check looks at: the Request (input stage) or the answer's text (output stage).
Subject = Request | str
T = TypeVar("T")

#: Cost tiers. Cheap checks (regex, heuristics) are CPU-only and finish without waiting,
#: so they run inline one after another; the others wait on I/O and run concurrently.
CHEAP: Final = 0
EMBEDDING: Final = 1
MODEL: Final = 2


@dataclass(frozen=True, slots=True)
class Hit:
    """One match in one text: what it is and where (``start``/``end`` offsets)."""

    label: str
    start: int
    end: int
    message: int | None = None  # the message's index, for an input check


@dataclass(slots=True)
class Finding:
    """What a check found. ``fixed`` is the repaired subject (for ``fix``); ``hint`` is
    what to tell the model when re-asking; ``restore`` maps placeholders to originals
    (never recorded in the trace); ``details`` go in the span (no sensitive values)."""

    reason: str
    span: tuple[int, int] | None = None
    hits: Sequence[Hit] = ()
    fixed: Subject | None = None
    hint: str | None = None
    restore: Mapping[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


class Check(ABC):
    """One guardrail check. Subclasses set ``tier`` and implement ``run``."""

    tier: ClassVar[int] = CHEAP
    #: The actions this check can take (``fix`` only where it knows how to repair).
    actions: ClassVar[tuple[Action, ...]] = ("block", "flag")
    #: Whether the check needs the whole answer (never run on a stream window).
    needs_whole: ClassVar[bool] = False

    def __init__(self, name: str, *, stage: Stage = "input", action: Action = "block") -> None:
        if action not in self.actions:
            raise ValueError(
                f"check {name!r} cannot {action!r}; it can: {', '.join(self.actions)}"
            )
        if action == "reask" and stage != "output":
            raise ValueError(f"check {name!r}: reask only applies to output checks")
        self.name, self.stage, self.action = name, stage, action

    @abstractmethod
    async def run(self, subject: Subject) -> Finding | None:
        """Look at ``subject``; a Finding when something is wrong, else None."""

    def bind(self, inner: Model) -> None:
        """Called once by the wrapper with the model it guards (token counting)."""
        return None

    def describe(self, subject: Subject) -> str:
        """What was checked, for the trace."""
        if isinstance(subject, str):
            return f"answer, {len(subject)} chars"
        chars = sum(len(m.content) for m in subject.messages)
        return f"{len(subject.messages)} messages, {chars} chars"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.stage}/{self.action}>"


class TextCheck(Check):
    """A check that scans text: each message in ``roles`` of a request, or the answer.
    Subclasses implement ``scan`` (and ``replace`` to support ``fix``)."""

    def __init__(self, name: str, *, roles: Iterable[Role] = ("user", "tool"),
                 **kw: Any) -> None:
        super().__init__(name, **kw)
        self.roles = frozenset(roles)

    @abstractmethod
    def scan(self, text: str) -> list[Hit]:
        """Every match in ``text``, in order, non-overlapping."""

    def replace(self, text: str, hits: Sequence[Hit], state: dict[str, Any]) -> str:
        """``text`` with ``hits`` repaired; ``state`` is shared across one subject."""
        raise NotImplementedError  # only reached when ``fix`` is in ``actions``

    def reason(self, hits: Sequence[Hit]) -> str:
        labels = sorted({h.label for h in hits})
        return f"found {len(hits)} match(es): {', '.join(labels)}"

    def details(self, hits: Sequence[Hit], state: dict[str, Any]) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for h in hits:
            counts[h.label] = counts.get(h.label, 0) + 1
        return {"counts": counts}

    async def run(self, subject: Subject) -> Finding | None:
        return self.check(subject)

    def check(self, subject: Subject) -> Finding | None:
        """The synchronous body of ``run`` (cheap checks are pure CPU)."""
        hits: list[Hit] = []
        state: dict[str, Any] = {}
        if isinstance(subject, str):
            hits = self.scan(subject)
            if not hits:
                return None
            fixed: Subject | None = (
                self.replace(subject, hits, state) if self.action == "fix" else None
            )
        else:
            msgs: list[Message] = []
            for i, m in enumerate(subject.messages):
                # A message with images is checked part by part, so a fix reaches the
                # text parts that providers send.
                pieces = [p.text for p in m.parts if isinstance(p, TextPart)] if m.parts \
                    else [m.content]
                new: list[str] = []
                for text in pieces:
                    found = self.scan(text) if m.role in self.roles else []
                    hits.extend(dataclasses.replace(h, message=i) for h in found)
                    new.append(self.replace(text, found, state)
                               if found and self.action == "fix" else text)
                if new == pieces:
                    msgs.append(m)
                elif m.parts:
                    it = iter(new)
                    parts = tuple(TextPart(next(it)) if isinstance(p, TextPart) else p
                                  for p in m.parts)
                    msgs.append(dataclasses.replace(m, content="".join(new), parts=parts))
                else:
                    msgs.append(dataclasses.replace(m, content=new[0]))
            if not hits:
                return None
            fixed = None
            if self.action == "fix":
                fixed = Request(tuple(msgs), subject.params, subject.metadata)
        first = hits[0]
        return Finding(self.reason(hits), (first.start, first.end), hits, fixed,
                       restore=state.get("restore", {}), details=self.details(hits, state))


def plan(checks: Sequence[Check]) -> list[list[Check]]:
    """The order checks run in: by tier (cheap first, stable), a fix alone in its group
    (the next check sees the fixed text), the rest of a tier together."""
    groups: list[list[Check]] = []
    last_tier: int | None = None
    for c in sorted(checks, key=lambda c: c.tier):
        if c.action == "fix":
            groups.append([c])
            last_tier = None
            continue
        if groups and last_tier == c.tier:
            groups[-1].append(c)
        else:
            groups.append([c])
            last_tier = c.tier
    return groups


# -- model calls made by checks -------------------------------------------------------


@dataclass(slots=True)
class Record:
    """What one check run did besides its Finding: model calls, and notes for the trace."""

    calls: list[Completion] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)


_record: contextvars.ContextVar[Record | None] = contextvars.ContextVar(
    "chorus_guardrail_record", default=None
)


@contextlib.contextmanager
def recording(record: Record) -> Iterator[Record]:
    """Collect what the check run in this block does into ``record``."""
    token = _record.set(record)
    try:
        yield record
    finally:
        _record.reset(token)


def _keep(found: Iterable[Completion]) -> None:
    rec = _record.get()
    if rec is not None:
        rec.calls.extend(found)


def note(**details: Any) -> None:
    """Record details for the trace even when the check finds nothing (scores ...)."""
    rec = _record.get()
    if rec is not None:
        rec.notes.update(details)


async def ask(model: Model, request: Request) -> Completion:
    """Call ``model`` for a check; the call is recorded for the wrapper's trace."""
    answer = await call(model, request)
    _keep((answer,))
    return answer


async def ask_json(model: Model, request: Request, schema: Mapping[str, Any],
                   validate: Callable[[Any], T] | None = None) -> T | Any:
    """``core.structured.ask_json`` for a check, with every call recorded;
    ``validate`` turns the value into what the check needs (a ValueError from it becomes
    MalformedResponse)."""
    try:
        value, calls = await _ask_json(model, request, schema)
    except MalformedResponse as exc:
        _keep(getattr(exc, "completions", ()))
        raise
    _keep(calls)
    if validate is None:
        return value
    try:
        return validate(value)
    except ValueError as exc:
        raise MalformedResponse(str(exc), model=model.name) from None
