"""The values that flow through every Model: requests in, completions and spans out.

These sit on the hot path, so they are frozen, slotted dataclasses. ``UNSET`` marks a
parameter that was not given, which is different from one given as ``None``.

A message's ``content`` is always its text. A message with images also carries its
``parts`` (text and images in order); an assistant's message may carry ``tool_calls``
and a ``tool`` message answers one call (``tool_call_id``). A request offers ``Tool``
definitions in its params; a completion may carry ``ToolCall``s (with
``finish_reason="tool_calls"``) and per-token ``TokenLogprob``s.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar

__all__ = [
    "MAX_TEMPERATURE",
    "UNSET",
    "Completion",
    "ContentPart",
    "ForcedTool",
    "ImagePart",
    "Message",
    "Params",
    "Request",
    "Role",
    "Span",
    "TextDelta",
    "TextPart",
    "TokenLogprob",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "ToolChoice",
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
class TextPart:
    text: str


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image by URL: ``https://...`` or a ``data:image/png;base64,...`` URL."""

    url: str
    #: OpenAI's ``detail`` ("auto", "low", "high"), passed on where a provider takes it.
    detail: str | None = None

    @property
    def is_data(self) -> bool:
        return self.url.startswith("data:")

    def data(self) -> tuple[str, str]:
        """The media type and base64 payload of a data URL (ValueError otherwise)."""
        head, sep, payload = self.url.partition(",")
        if not (self.is_data and sep and head.endswith(";base64")):
            raise ValueError("not a base64 data URL")
        return head[len("data:"): -len(";base64")] or "application/octet-stream", payload


ContentPart = TextPart | ImagePart


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call a model asks the caller to make: ``arguments`` is the JSON text as written."""

    id: str
    name: str
    arguments: str = "{}"

    def args(self) -> Any:
        """The arguments, parsed (ValueError when they are not JSON)."""
        return json.loads(self.arguments)

    def canonical(self) -> tuple[str, str]:
        """The name and the arguments as canonical JSON (sorted keys, no spaces), so
        calls that differ only in formatting compare equal; unparsable arguments stay
        as written."""
        try:
            args = json.dumps(json.loads(self.arguments), sort_keys=True,
                              separators=(",", ":"), ensure_ascii=False)
        except ValueError:
            args = self.arguments
        return self.name, args

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call; ``parameters`` is its arguments' JSON schema."""

    name: str
    description: str | None = None
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    strict: bool | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tool:
        """From OpenAI's ``{"type": "function", "function": {...}}`` or the inner dict."""
        fn = data.get("function", data)
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
            raise TypeError("a tool needs a function name")
        params = fn.get("parameters")
        return cls(fn["name"], fn.get("description"),
                   params if isinstance(params, Mapping)
                   else {"type": "object", "properties": {}}, fn.get("strict"))


@dataclass(frozen=True, slots=True)
class ForcedTool:
    """``tool_choice`` naming the one function the model must call."""

    name: str


#: "auto" (the model decides), "none" (no call), "required" (at least one call), or
#: one function by name.
ToolChoice = Literal["auto", "none", "required"] | ForcedTool


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    #: The text (for a message with ``parts``: its text parts joined).
    content: str
    #: Text and images in order, for a message that has images (else empty).
    parts: tuple[ContentPart, ...] = ()
    #: An assistant's calls.
    tool_calls: tuple[ToolCall, ...] = ()
    #: The call a ``tool`` message answers.
    tool_call_id: str | None = None
    name: str | None = None

    @classmethod
    def of_parts(cls, role: Role, parts: Iterable[ContentPart], **kw: Any) -> Message:
        """A message from content parts (kept only when there is an image)."""
        parts = tuple(parts)
        text = "".join(p.text for p in parts if isinstance(p, TextPart))
        has_image = any(isinstance(p, ImagePart) for p in parts)
        return cls(role, text, parts if has_image else (), **kw)

    @property
    def images(self) -> tuple[ImagePart, ...]:
        return tuple(p for p in self.parts if isinstance(p, ImagePart))


#: The highest temperature any entry point accepts (OpenAI's bound; the gateway and the
#: CLI refuse more, and 0 is the lowest).
MAX_TEMPERATURE = 2.0


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
    tools: tuple[Tool, ...] | None | Unset = UNSET
    tool_choice: ToolChoice | None | Unset = UNSET
    parallel_tool_calls: bool | None | Unset = UNSET
    #: Return each output token's log-probability (``Completion.logprobs``) ...
    logprobs: bool | None | Unset = UNSET
    #: ... with this many most likely alternatives at each position.
    top_logprobs: int | None | Unset = UNSET

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
        tools = values.get("tools")
        if isinstance(tools, list | tuple):
            values["tools"] = tuple(t if isinstance(t, Tool) else Tool.from_dict(t)
                                    for t in tools)
        choice = values.get("tool_choice")
        if isinstance(choice, Mapping):
            values["tool_choice"] = ForcedTool(Tool.from_dict(choice).name)
        elif isinstance(choice, str) and choice not in ("auto", "none", "required"):
            values["tool_choice"] = ForcedTool(choice)
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

    @property
    def needs(self) -> frozenset[str]:
        """What a model must accept to answer this request: ``tools``, ``images``,
        ``json_schema``, ``logprobs`` (see ``chorus.core.capabilities``)."""
        p, out = self.params, set()
        if p.tools and p.tool_choice != "none":
            out.add("tools")
        if p.response_format:
            out.add("json_schema")
        if p.logprobs:
            out.add("logprobs")
        if any(m.parts for m in self.messages) and any(m.images for m in self.messages):
            out.add("images")
        return frozenset(out)

    def without_tools(self) -> Request:
        """The same request offering no tools (for a pattern's own internal calls)."""
        p = self.params
        if p.tools is UNSET and p.tool_choice is UNSET and p.parallel_tool_calls is UNSET:
            return self
        return Request(self.messages, dataclasses.replace(
            p, tools=UNSET, tool_choice=UNSET, parallel_tool_calls=UNSET), self.metadata)

    def with_params(self, **params: Any) -> Request:
        return Request(self.messages, Params.from_dict(params).over(self.params), self.metadata)

    def with_defaults(self, defaults: Params) -> Request:
        """Fill the unset parameters of this request from ``defaults``."""
        if defaults is _NO_PARAMS or defaults == _NO_PARAMS:  # nothing to fill in
            return self
        return Request(self.messages, self.params.over(defaults), self.metadata)


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens of one answer. ``input_tokens`` counts every prompt token; of those,
    ``cached_input_tokens`` were read from the provider's prompt cache and
    ``cache_write_tokens`` were written to it (each priced apart where the price says)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
        )

    def to_dict(self) -> dict[str, int]:
        out = {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}
        if self.cached_input_tokens:
            out["cached_input_tokens"] = self.cached_input_tokens
        if self.cache_write_tokens:
            out["cache_write_tokens"] = self.cache_write_tokens
        return out

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @staticmethod
    def total(usages: Iterable[Usage]) -> Usage:
        i = o = c = w = 0
        for u in usages:
            i += u.input_tokens
            o += u.output_tokens
            c += u.cached_input_tokens
            w += u.cache_write_tokens
        return Usage(i, o, c, w)


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
class TokenLogprob:
    """One output token, its log-probability and the most likely alternatives there."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"token": self.token, "logprob": self.logprob,
                "top": [[t, lp] for t, lp in self.top]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TokenLogprob:
        return cls(str(data["token"]), float(data["logprob"]),
                   tuple((str(t), float(lp)) for t, lp in data.get("top") or ()))


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
    #: The calls the model asks for (``finish_reason`` is then "tool_calls").
    tool_calls: tuple[ToolCall, ...] = ()
    #: Each output token's log-probability, when the request asked (``Params.logprobs``).
    logprobs: tuple[TokenLogprob, ...] | None = None

    def to_dict(self, *, trace: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "text": self.text,
            "model": self.model,
            "usage": self.usage.to_dict(),
            "cost_usd": self.cost_usd,
            "latency_s": self.latency_s,
            "finish_reason": self.finish_reason,
        }
        if self.tool_calls:
            out["tool_calls"] = [c.to_dict() for c in self.tool_calls]
        if self.logprobs is not None:
            out["logprobs"] = [t.to_dict() for t in self.logprobs]
        if trace and self.trace is not None:
            out["trace"] = self.trace.to_dict()
        return out

    def replace(self, **changes: Any) -> Completion:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of streamed text. A stream ends with the full ``Completion``. ``model``
    names the leaf that produced the piece (empty where a source does not say), so a
    stream continued on another model after a failure reports each part's model."""

    text: str
    model: str = ""
    #: The log-probabilities of this piece's tokens, when the request asked and the
    #: source gives them per piece (they are in the final ``Completion.logprobs`` too).
    logprobs: tuple[TokenLogprob, ...] | None = None


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a streamed tool call. The first piece of call ``index`` carries its
    ``id`` and ``name``; the ``arguments`` pieces, joined, are the JSON text."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
