"""The Chat Completions request body, validated, and turned into a chorus ``Request``.

Every field of OpenAI's body is in ``FIELDS`` with what chorus does with it: done
(``"yes"``), taken without effect on the answer (a reason), or refused with a 400 naming
it unless it has its default value. The README's table of fields is this table. A field
that is in no table (a typo, a field from another API) is refused by name too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from chorus.core import types as T
from chorus.gateway.wire_error import WireError

__all__ = [
    "FIELDS",
    "MAX_TEXT_CHARS",
    "ChatMessage",
    "ChatRequest",
    "ResponseFormat",
    "WireTool",
    "to_request",
    "tool_choice_of",
    "tools_of",
]

#: The most text one message may carry: a string ``content``, or its text parts together.
MAX_TEXT_CHARS: Final = 1_000_000

#: What chorus does with each field of the Chat Completions body.
FIELDS: Final[Mapping[str, str]] = {
    "model": "yes: the system's name",
    "messages": "yes: text and image parts, assistant tool_calls, tool results",
    "tools": "yes: function tools (custom tools are refused)",
    "tool_choice": "yes: auto, none, required, or one function",
    "parallel_tool_calls": "yes",
    "logprobs": "yes",
    "top_logprobs": "yes (0-20)",
    "temperature": "yes",
    "top_p": "yes",
    "max_tokens": "yes",
    "max_completion_tokens": "yes",
    "stop": "yes (up to 4)",
    "seed": "yes",
    "n": "1 only: one choice per request; for more, send it again or serve a "
         "fanout or vote system",
    "response_format": "yes: text, json_object, json_schema",
    "stream": "yes",
    "stream_options": "yes: include_usage",
    "chorus": "chorus's own: {trace: true} returns the whole trace",
    "user": "taken, no effect on the answer",
    "safety_identifier": "taken, no effect on the answer",
    "metadata": "taken, no effect on the answer (chorus stores nothing)",
    "prompt_cache_key": "taken, no effect on the answer",
    "prompt_cache_retention": "taken, no effect on the answer",
    "service_tier": "taken, no effect on the answer",
    "frequency_penalty": "refused unless 0",
    "presence_penalty": "refused unless 0",
    "logit_bias": "refused unless empty",
    "modalities": 'refused unless ["text"]',
    "store": "refused unless false",
    "audio": "refused",
    "prediction": "refused",
    "reasoning_effort": "refused",
    "verbosity": "refused",
    "web_search_options": "refused",
    "functions": "refused: use tools",
    "function_call": "refused: use tool_choice",
}

# Refused fields and the values that change nothing (and so are accepted).
_HARMLESS: Final[Mapping[str, tuple[Any, ...]]] = {
    "frequency_penalty": (0,), "presence_penalty": (0,), "logit_bias": ({},),
    "modalities": (["text"],), "store": (False,), "audio": (), "prediction": (),
    "reasoning_effort": (), "verbosity": (), "web_search_options": (), "functions": (),
    "function_call": (), "n": (1,),
}


class _Wire(BaseModel):
    # Strict: "stream": "yes" is not a boolean. Unknown fields are refused by name.
    model_config = ConfigDict(extra="forbid", strict=True)


class TextPart(_Wire):
    type: Literal["text"]
    text: str


class ImageURL(_Wire):
    url: str = Field(min_length=1)
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(_Wire):
    type: Literal["image_url"]
    image_url: ImageURL


class RefusalPart(_Wire):
    type: Literal["refusal"]
    refusal: str


class OtherPart(BaseModel):
    """Audio and file parts: parsed only to be refused by name."""

    model_config = ConfigDict(extra="allow")
    type: Literal["input_audio", "file"]


Part = Annotated[TextPart | ImagePart | RefusalPart | OtherPart, Field(discriminator="type")]


class CalledFunction(_Wire):
    name: str = Field(min_length=1, max_length=64)
    arguments: str


class WireToolCall(_Wire):
    id: str = Field(min_length=1, max_length=256)
    type: Literal["function"]
    function: CalledFunction


class ChatMessage(_Wire):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[Part] | None = None
    name: str | None = Field(None, max_length=64)
    tool_calls: list[WireToolCall] | None = Field(None, max_length=128)
    tool_call_id: str | None = Field(None, max_length=256)
    refusal: str | None = None

    @model_validator(mode="after")
    def _check(self) -> ChatMessage:
        n = (len(self.content) if isinstance(self.content, str) else
             sum(len(p.text) for p in self.content or () if isinstance(p, TextPart)))
        if n > MAX_TEXT_CHARS:
            raise ValueError(f"at most {MAX_TEXT_CHARS:,} characters of text per message "
                             f"(this one has {n:,})")
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only an assistant message has tool_calls")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs tool_call_id")
        return self


class FunctionDef(_Wire):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class WireTool(_Wire):
    type: Literal["function"]
    function: FunctionDef


class ChosenFunction(_Wire):
    name: str = Field(min_length=1, max_length=64)


class NamedToolChoice(_Wire):
    type: Literal["function"]
    function: ChosenFunction


class JsonSchemaFormat(_Wire):
    name: str = Field("answer", max_length=64)
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None
    description: str | None = None


class ResponseFormat(_Wire):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class StreamOptions(_Wire):
    include_usage: StrictBool = False
    include_obfuscation: StrictBool | None = None


class ChorusOptions(_Wire):
    #: Return the whole trace (every model call, each pattern's decision) in ``chorus``.
    trace: StrictBool = False


class ChatRequest(_Wire):
    """``POST /v1/chat/completions``."""

    model: str = Field(min_length=1, max_length=256)
    messages: list[ChatMessage] = Field(min_length=1, max_length=4096)
    tools: list[WireTool] | None = Field(None, max_length=128)
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: StrictBool | None = None
    logprobs: StrictBool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    temperature: float | None = Field(None, ge=0, le=T.MAX_TEMPERATURE)
    top_p: float | None = Field(None, ge=0, le=1)
    max_tokens: int | None = Field(None, ge=1, le=1_000_000)
    max_completion_tokens: int | None = Field(None, ge=1, le=1_000_000)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1)
    n: int | None = Field(None, ge=1)
    stream: StrictBool | None = False
    stream_options: StreamOptions | None = None
    response_format: ResponseFormat | None = None
    chorus: ChorusOptions | None = None
    # Taken, without effect on the answer.
    user: str | None = None
    safety_identifier: str | None = None
    metadata: dict[str, str] | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    service_tier: str | None = None
    # Refused unless harmless (see _HARMLESS).
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    modalities: list[str] | None = None
    store: StrictBool | None = None
    audio: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    verbosity: str | None = None
    web_search_options: dict[str, Any] | None = None
    functions: list[dict[str, Any]] | None = None
    function_call: str | dict[str, Any] | None = None


# -- the chorus Request ----------------------------------------------------------------


def _refuse_unsupported(body: ChatRequest) -> None:
    for name, harmless in _HARMLESS.items():
        value = getattr(body, name)
        if value is not None and value not in harmless:
            raise WireError(400, f"{name}: chorus does not support it ({FIELDS[name]}); "
                            "see the README's table of Chat Completions fields",
                            param=name, code="unsupported_field")


def _parts(i: int, m: ChatMessage) -> tuple[str, tuple[T.ContentPart, ...]]:
    if m.content is None:
        return m.refusal or "", ()
    if isinstance(m.content, str):
        return m.content, ()
    out: list[T.ContentPart] = []
    for j, p in enumerate(m.content):
        if isinstance(p, TextPart):
            out.append(T.TextPart(p.text))
        elif isinstance(p, RefusalPart):
            out.append(T.TextPart(p.refusal))
        elif isinstance(p, ImagePart):
            if m.role != "user":
                raise WireError(400, f"messages.{i}.content.{j}: only a user message may "
                                "carry an image", param=f"messages.{i}.content.{j}",
                                code="invalid_value")
            out.append(T.ImagePart(p.image_url.url, p.image_url.detail))
        else:
            kind = "audio" if p.type == "input_audio" else "file"
            raise WireError(400, f"messages.{i}.content.{j}: {kind} parts are not supported "
                            "(text and image_url parts are)",
                            param=f"messages.{i}.content.{j}", code="unsupported_content")
    text = "".join(p.text for p in out if isinstance(p, T.TextPart))
    return text, tuple(out)


def _message(i: int, m: ChatMessage) -> T.Message:
    role: T.Role = "system" if m.role == "developer" else m.role
    text, parts = _parts(i, m)
    calls = tuple(T.ToolCall(c.id, c.function.name, c.function.arguments)
                  for c in m.tool_calls or ())
    msg = T.Message.of_parts(role, parts) if parts else T.Message(role, text)
    if calls or m.tool_call_id or m.name:
        msg = T.Message(msg.role, msg.content, msg.parts, calls, m.tool_call_id, m.name)
    return msg


def tools_of(tools: list[WireTool] | None) -> tuple[T.Tool, ...] | None:
    if tools is None:
        return None
    seen: set[str] = set()
    out = []
    for i, t in enumerate(tools):
        f = t.function
        if f.name in seen:
            raise WireError(400, f"tools.{i}.function.name: {f.name!r} is given twice",
                            param=f"tools.{i}.function.name", code="invalid_value")
        seen.add(f.name)
        params = f.parameters if f.parameters is not None else {"type": "object",
                                                                 "properties": {}}
        out.append(T.Tool(f.name, f.description, params, f.strict))
    return tuple(out)


def tool_choice_of(choice: str | NamedToolChoice | None,
                   tools: tuple[T.Tool, ...] | None) -> T.ToolChoice | None:
    if choice is None:
        return None
    if not tools and choice != "none":
        raise WireError(400, "tool_choice: give tools as well", param="tool_choice",
                        code="invalid_value")
    if isinstance(choice, NamedToolChoice):
        name = choice.function.name
        if name not in {t.name for t in tools or ()}:
            raise WireError(400, f"tool_choice: {name!r} is not one of the tools",
                            param="tool_choice", code="invalid_value")
        return T.ForcedTool(name)
    assert choice in ("none", "auto", "required")
    return choice  # type: ignore[return-value]


def _stop(stop: str | list[str] | None) -> tuple[str, ...] | None:
    if stop is None:
        return None
    stops = (stop,) if isinstance(stop, str) else tuple(stop)
    if len(stops) > 4:
        raise WireError(400, "stop: at most 4 sequences", param="stop", code="invalid_value")
    return stops or None


def _schema(fmt: ResponseFormat | None) -> dict[str, Any] | None:
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return {"type": "object"}
    if fmt.json_schema is None:
        raise WireError(400, "response_format.json_schema is required for type json_schema",
                        param="response_format.json_schema", code="missing_field")
    schema = dict(fmt.json_schema.schema_)
    schema.setdefault("title", fmt.json_schema.name)
    return schema


def to_request(body: ChatRequest, metadata: Mapping[str, Any]) -> T.Request:
    """The chorus Request for a chat completions body (only the parameters it gives)."""
    _refuse_unsupported(body)
    messages = tuple(_message(i, m) for i, m in enumerate(body.messages))
    given: dict[str, Any] = {}
    if body.temperature is not None:
        given["temperature"] = body.temperature
    if body.top_p is not None:
        given["top_p"] = body.top_p
    max_tokens = body.max_completion_tokens or body.max_tokens
    if max_tokens is not None:
        given["max_tokens"] = max_tokens
    stop = _stop(body.stop)
    if stop is not None:
        given["stop"] = stop
    if body.seed is not None:
        given["seed"] = body.seed
    schema = _schema(body.response_format)
    if schema is not None:
        given["response_format"] = schema
    tools = tools_of(body.tools)
    if tools:
        given["tools"] = tools
    choice = tool_choice_of(body.tool_choice, tools)
    if choice is not None:
        given["tool_choice"] = choice
    if body.parallel_tool_calls is not None:
        given["parallel_tool_calls"] = body.parallel_tool_calls
    if body.top_logprobs is not None and not body.logprobs:
        raise WireError(400, "top_logprobs: set logprobs to true as well",
                        param="top_logprobs", code="invalid_value")
    if body.logprobs:
        given["logprobs"] = True
        given["top_logprobs"] = body.top_logprobs or 0
    return T.Request(messages, T.Params(**given) if given else T.Params(), metadata)
