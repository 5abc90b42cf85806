"""The values that flow through every Model: requests in, completions and spans out.

These sit on the hot path, so they are frozen, slotted dataclasses. ``UNSET`` marks a
parameter that was not given, which is different from one given as ``None``.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar

__all__ = [
    "UNSET",
    "Completion",
    "Message",
    "Params",
    "Request",
    "Role",
    "Span",
    "TextDelta",
    "Unset",
    "Usage",
]

T = TypeVar("T")


class Unset(enum.Enum):
    """The type of ``UNSET``: a parameter that was not given at all."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Final = Unset.UNSET

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class Params:
    """Sampling parameters. Each is ``UNSET`` unless given; ``None`` is a value."""

    temperature: float | None | Unset = UNSET
    top_p: float | None | Unset = UNSET
    max_tokens: int | None | Unset = UNSET
    stop: tuple[str, ...] | None | Unset = UNSET
    seed: int | None | Unset = UNSET
    # A JSON schema the answer must follow (OpenAI's ``json_schema.schema``).
    response_format: Mapping[str, Any] | None | Unset = UNSET

    def get(self, name: str, default: T) -> Any | T:
        value = getattr(self, name)
        return default if value is UNSET else value

    def given(self) -> dict[str, Any]:
        """The parameters that were set, by name."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) is not UNSET
        }

    def over(self, base: Params) -> Params:
        """These parameters, with ``base`` filling in whatever is unset here."""
        mine = self.given()
        if not mine:
            return base
        return dataclasses.replace(base, **mine)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Params:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise TypeError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
        values = dict(data)
        if isinstance(values.get("stop"), str):
            values["stop"] = (values["stop"],)
        elif isinstance(values.get("stop"), list):
            values["stop"] = tuple(values["stop"])
        return cls(**values)


_NO_PARAMS: Final = Params()
_NO_METADATA: Final[Mapping[str, Any]] = {}


@dataclass(frozen=True, slots=True)
class Request:
    messages: tuple[Message, ...]
    params: Params = _NO_PARAMS
    metadata: Mapping[str, Any] = field(default_factory=lambda: _NO_METADATA)

    @classmethod
    def of(cls, prompt: str, *, system: str | None = None, **params: Any) -> Request:
        """A one-turn request: an optional system message and a user prompt."""
        msgs = (Message("system", system),) if system else ()
        return cls(msgs + (Message("user", prompt),), Params.from_dict(params))

    @property
    def prompt(self) -> str:
        """The text of the last user message (empty when there is none)."""
        for m in reversed(self.messages):
            if m.role == "user":
                return m.content
        return ""

    @property
    def system(self) -> str | None:
        parts = [m.content for m in self.messages if m.role == "system"]
        return "\n\n".join(parts) if parts else None

    def with_prompt(self, prompt: str, *, keep_history: bool = False) -> Request:
        """The same request asking ``prompt`` instead (system messages kept)."""
        kept = self.messages[:-1] if keep_history else tuple(
            m for m in self.messages if m.role == "system"
        )
        if keep_history and self.messages and self.messages[-1].role != "user":
            kept = self.messages
        return Request(kept + (Message("user", prompt),), self.params, self.metadata)

    def with_params(self, **params: Any) -> Request:
        return Request(self.messages, Params.from_dict(params).over(self.params), self.metadata)

    def with_defaults(self, defaults: Params) -> Request:
        """Fill the unset parameters of this request from ``defaults``."""
        if defaults is _NO_PARAMS or defaults == _NO_PARAMS:  # nothing to fill in
            return self
        return Request(self.messages, self.params.over(defaults), self.metadata)


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens
        )

    def to_dict(self) -> dict[str, int]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @staticmethod
    def total(usages: Iterable[Usage]) -> Usage:
        i = o = 0
        for u in usages:
            i += u.input_tokens
            o += u.output_tokens
        return Usage(i, o)


ZERO_USAGE: Final = Usage()


@dataclass(slots=True)
class Span:
    """One node of a trace: a model call, a pattern's decision, a policy's action.

    ``kind`` is ``model`` for a leaf call, the pattern's name for a composite, or the
    policy's name for a wrapper. ``usage`` and ``cost_usd`` of a composite include every
    call below it. ``attributes`` hold the decision (route, tally, plan, scores ...).
    """

    kind: str
    name: str
    model: str | None = None
    usage: Usage = ZERO_USAGE
    cost_usd: float = 0.0
    latency_s: float = 0.0
    start: float = field(default_factory=time.time)
    attributes: dict[str, Any] = field(default_factory=dict)
    children: list[Span] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "model": self.model,
            "usage": self.usage.to_dict(),
            "cost_usd": self.cost_usd,
            "latency_s": self.latency_s,
            "start": self.start,
            "attributes": self.attributes,
            "error": self.error,
            "children": [c.to_dict() for c in self.children],
        }

    def walk(self) -> Iterable[Span]:
        yield self
        for c in self.children:
            yield from c.walk()


@dataclass(frozen=True, slots=True)
class Completion:
    """An answer. ``model`` names the leaf that produced ``text``; ``usage`` and
    ``cost_usd`` cover every call made for this answer, including ones that lost."""

    text: str
    model: str
    usage: Usage = ZERO_USAGE
    cost_usd: float = 0.0
    latency_s: float = 0.0
    finish_reason: str | None = "stop"
    trace: Span | None = None
    # Mean log-probability per output token, where the provider reports it.
    logprob: float | None = None

    def to_dict(self, *, trace: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "text": self.text,
            "model": self.model,
            "usage": self.usage.to_dict(),
            "cost_usd": self.cost_usd,
            "latency_s": self.latency_s,
            "finish_reason": self.finish_reason,
        }
        if trace and self.trace is not None:
            out["trace"] = self.trace.to_dict()
        return out

    def replace(self, **changes: Any) -> Completion:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of streamed text. A stream ends with the full ``Completion``."""

    text: str

