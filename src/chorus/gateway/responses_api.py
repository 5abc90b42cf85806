"""OpenAI's Responses API (``POST /v1/responses``) to and from chorus types (no I/O).

The same chorus Request as a chat completion: ``input`` (a string, or message,
``function_call`` and ``function_call_output`` items) and ``instructions`` become the
messages; ``tools`` (function tools), ``tool_choice``, ``text.format``, sampling and
``top_logprobs`` become params. Nothing is stored, so ``previous_response_id`` and
``store: true`` are refused by name, as is every field chorus does not do.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from chorus.core import types as T
from chorus.core.types import Completion, Usage
from chorus.gateway.chat_request import MAX_TEXT_CHARS
from chorus.gateway.wire_error import WireError

__all__ = ["RESPONSES_FIELDS", "ResponsesRequest", "StreamState", "response_body", "to_request"]

#: What chorus does with each field of the Responses API body.
RESPONSES_FIELDS: Final[Mapping[str, str]] = {
    "model": "yes", "input": "yes: text, images, function calls and their outputs",
    "instructions": "yes", "tools": "yes: function tools", "tool_choice": "yes",
    "parallel_tool_calls": "yes", "temperature": "yes", "top_p": "yes",
    "max_output_tokens": "yes", "top_logprobs": "yes", "text": "yes: format",
    "stream": "yes", "stream_options": "taken", "metadata": "taken, no effect",
    "user": "taken, no effect", "safety_identifier": "taken, no effect",
    "prompt_cache_key": "taken, no effect", "service_tier": "taken, no effect",
    "truncation": 'refused unless "disabled"', "include": "taken, no effect",
    "store": "refused unless false", "previous_response_id": "refused",
    "conversation": "refused", "reasoning": "refused", "background": "refused unless false",
    "prompt": "refused", "max_tool_calls": "refused",
}

_ids = random.Random()


def _id(prefix: str) -> str:
    return f"{prefix}_{_ids.getrandbits(128):032x}"


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class InputText(_Wire):
    type: Literal["input_text", "output_text"]
    text: str = Field(max_length=MAX_TEXT_CHARS)
    annotations: list[Any] | None = None
    logprobs: list[Any] | None = None


class InputImage(_Wire):
    type: Literal["input_image"]
    image_url: str | None = None
    file_id: str | None = None
    detail: Literal["auto", "low", "high"] | None = None


InputPart = Annotated[InputText | InputImage, Field(discriminator="type")]


class MessageItem(_Wire):
    type: Literal["message"] = "message"
    role: Literal["user", "system", "developer", "assistant"]
    content: str | list[InputPart] = Field(max_length=MAX_TEXT_CHARS)
    id: str | None = None
    status: str | None = None


class FunctionCallItem(_Wire):
    type: Literal["function_call"]
    call_id: str = Field(min_length=1)
    name: str = Field(min_length=1, max_length=64)
    arguments: str
    id: str | None = None
    status: str | None = None


class FunctionOutputItem(_Wire):
    type: Literal["function_call_output"]
    call_id: str = Field(min_length=1)
    output: str = Field(max_length=MAX_TEXT_CHARS)
    id: str | None = None
    status: str | None = None


Item = MessageItem | FunctionCallItem | FunctionOutputItem


class FunctionTool(_Wire):
    type: Literal["function"]
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class NamedTool(_Wire):
    type: Literal["function"]
    name: str


class TextFormat(_Wire):
    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None
    description: str | None = None


class TextOptions(_Wire):
    format: TextFormat | None = None
    verbosity: Literal["medium"] | None = None


class ResponsesRequest(_Wire):
    """``POST /v1/responses``."""

    model: str = Field(min_length=1, max_length=256)
    input: str | list[Item] = Field(max_length=4096)
    instructions: str | None = Field(None, max_length=MAX_TEXT_CHARS)
    tools: list[FunctionTool] | None = Field(None, max_length=128)
    tool_choice: Literal["none", "auto", "required"] | NamedTool | None = None
    parallel_tool_calls: StrictBool | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    max_output_tokens: int | None = Field(None, ge=1, le=1_000_000)
    top_logprobs: int | None = Field(None, ge=0, le=20)
    text: TextOptions | None = None
    stream: StrictBool | None = False
    stream_options: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    service_tier: str | None = None
    include: list[str] | None = None
    truncation: Literal["disabled"] | None = None
    store: Literal[False] | None = None
    background: Literal[False] | None = None


def _parts(content: str | list[Any]) -> tuple[str, tuple[T.ContentPart, ...]]:
    if isinstance(content, str):
        return content, ()
    parts: list[T.ContentPart] = []
    for p in content:
        if isinstance(p, InputText):
            parts.append(T.TextPart(p.text))
        elif p.image_url:
            parts.append(T.ImagePart(p.image_url, p.detail))
        else:
            raise WireError(400, "input: an input_image needs image_url (chorus stores no "
                            "files)", param="input", code="invalid_value")
    return "".join(p.text for p in parts if isinstance(p, T.TextPart)), tuple(parts)


def _messages(body: ResponsesRequest) -> tuple[T.Message, ...]:
    out: list[T.Message] = []
    if body.instructions:
        out.append(T.Message("system", body.instructions))
    if isinstance(body.input, str):
        return (*out, T.Message("user", body.input))
    calls: list[T.ToolCall] = []  # consecutive function_call items make one assistant turn
    for item in body.input:
        if isinstance(item, FunctionCallItem):
            calls.append(T.ToolCall(item.call_id, item.name, item.arguments))
            continue
        if calls:
            out.append(T.Message("assistant", "", tool_calls=tuple(calls)))
            calls = []
        if isinstance(item, FunctionOutputItem):
            out.append(T.Message("tool", item.output, tool_call_id=item.call_id))
        else:
            role: T.Role = "system" if item.role == "developer" else item.role
            text, parts = _parts(item.content)
            out.append(T.Message.of_parts(role, parts) if parts else T.Message(role, text))
    if calls:
        out.append(T.Message("assistant", "", tool_calls=tuple(calls)))
    return tuple(out)


def _format(text: TextOptions | None) -> dict[str, Any] | None:
    fmt = text.format if text is not None else None
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return {"type": "object"}
    if fmt.schema_ is None:
        raise WireError(400, "text.format.schema is required for type json_schema",
                        param="text.format.schema", code="missing_field")
    return {"title": fmt.name or "answer", **fmt.schema_}


def to_request(body: ResponsesRequest, metadata: Mapping[str, Any]) -> T.Request:
    given: dict[str, Any] = {}
    for name in ("temperature", "top_p", "parallel_tool_calls"):
        value = getattr(body, name)
        if value is not None:
            given[name] = value
    if body.max_output_tokens is not None:
        given["max_tokens"] = body.max_output_tokens
    fmt = _format(body.text)
    if fmt is not None:
        given["response_format"] = fmt
    if body.top_logprobs is not None:
        given["logprobs"], given["top_logprobs"] = True, body.top_logprobs
    tools = tuple(T.Tool(t.name, t.description, t.parameters or {"type": "object",
                                                                  "properties": {}}, t.strict)
                  for t in body.tools or ())
    if tools:
        given["tools"] = tools
    choice = body.tool_choice
    if choice is not None:
        if isinstance(choice, NamedTool):
            if choice.name not in {t.name for t in tools}:
                raise WireError(400, f"tool_choice: {choice.name!r} is not one of the tools",
                                param="tool_choice", code="invalid_value")
            given["tool_choice"] = T.ForcedTool(choice.name)
        elif tools or choice == "none":
            given["tool_choice"] = choice
        else:
            raise WireError(400, "tool_choice: give tools as well", param="tool_choice",
                            code="invalid_value")
    return T.Request(_messages(body), T.Params(**given), metadata)


# -- response bodies -------------------------------------------------------------------


def _usage(usage: Usage) -> dict[str, Any]:
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0}}


def _logprobs(c: Completion) -> list[dict[str, Any]]:
    return token_logprobs(c.logprobs)


def token_logprobs(tokens: tuple[T.TokenLogprob, ...] | None) -> list[dict[str, Any]]:
    return [{"token": t.token, "logprob": t.logprob, "bytes": list(t.token.encode()),
             "top_logprobs": [{"token": a, "logprob": lp, "bytes": list(a.encode())}
                              for a, lp in t.top]} for t in tokens or ()]


def message_item(mid: str, text: str, status: str, logprobs: list[Any] | None = None
                 ) -> dict[str, Any]:
    content = [] if status == "in_progress" else [
        {"type": "output_text", "text": text, "annotations": [], "logprobs": logprobs or []}]
    return {"type": "message", "id": mid, "status": status, "role": "assistant",
            "content": content}


def call_item(call: T.ToolCall, fid: str, status: str) -> dict[str, Any]:
    return {"type": "function_call", "id": fid, "call_id": call.id, "name": call.name,
            "arguments": call.arguments if status == "completed" else "", "status": status}


def response_body(rid: str, created: float, body: ResponsesRequest,
                  answer: Completion | None, output: list[dict[str, Any]] | None = None,
                  status: str = "completed", chorus: dict[str, Any] | None = None
                  ) -> dict[str, Any]:
    """The ``response`` object (``output`` defaults to the answer's items)."""
    if output is None and answer is not None:
        output = []
        if answer.text or not answer.tool_calls:
            output.append(message_item(_id("msg"), answer.text, "completed",
                                       _logprobs(answer)))
        output += [call_item(c, _id("fc"), "completed") for c in answer.tool_calls]
    incomplete = answer is not None and answer.finish_reason == "length"
    out: dict[str, Any] = {
        "id": rid, "object": "response", "created_at": int(created),
        "status": "incomplete" if incomplete and status == "completed" else status,
        # The leaf that answered, once there is an answer (as in chat completions).
        "model": answer.model if answer is not None else body.model,
        "output": output or [], "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "instructions": body.instructions, "metadata": body.metadata or {},
        "parallel_tool_calls": body.parallel_tool_calls is not False,
        "temperature": body.temperature, "top_p": body.top_p,
        "max_output_tokens": body.max_output_tokens,
        "tool_choice": (body.tool_choice.model_dump() if isinstance(body.tool_choice, NamedTool)
                        else body.tool_choice or "auto"),
        "tools": [t.model_dump(by_alias=True) for t in body.tools or ()],
        "text": {"format": {"type": "text"}}, "truncation": "disabled", "store": False,
        "usage": _usage(answer.usage) if answer is not None else None,
    }
    if chorus is not None:
        out["chorus"] = chorus
    return out


class StreamState:
    """Turns stream pieces into Responses API events (each with its sequence number)."""

    def __init__(self, body: ResponsesRequest) -> None:
        self.body, self.rid, self.created = body, _id("resp"), time.time()
        self.seq = 0
        self.items: list[dict[str, Any]] = []
        self.text_item: tuple[int, str] | None = None  # (output index, item id)
        self.text = ""
        #: The text's tokens' logprobs, as the pieces brought them (when asked).
        self.logprobs: list[dict[str, Any]] = []
        self.calls: dict[int, tuple[int, str, T.ToolCall]] = {}

    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        self.seq += 1
        return {"type": kind, "sequence_number": self.seq - 1, **fields}

    def start(self) -> list[dict[str, Any]]:
        r = response_body(self.rid, self.created, self.body, None, [], "in_progress")
        return [self.event("response.created", response=r),
                self.event("response.in_progress", response=r)]

    def _close_text(self) -> list[dict[str, Any]]:
        if self.text_item is None:
            return []
        index, mid = self.text_item
        part = {"type": "output_text", "text": self.text, "annotations": [],
                "logprobs": self.logprobs}
        item = message_item(mid, self.text, "completed", self.logprobs)
        self.items[index] = item
        self.text_item = None
        return [self.event("response.output_text.done", item_id=mid, output_index=index,
                           content_index=0, text=self.text, logprobs=self.logprobs),
                self.event("response.content_part.done", item_id=mid, output_index=index,
                           content_index=0, part=part),
                self.event("response.output_item.done", output_index=index, item=item)]

    def text_delta(self, piece: str, tokens: tuple[T.TokenLogprob, ...] | None = None
                   ) -> list[dict[str, Any]]:
        """Events for a piece of text (with its tokens' logprobs when the request asked
        for ``top_logprobs``)."""
        out = []
        if self.text_item is None:
            mid = _id("msg")
            self.text_item = (len(self.items), mid)
            self.items.append(message_item(mid, "", "in_progress"))
            out += [self.event("response.output_item.added", output_index=len(self.items) - 1,
                               item=self.items[-1]),
                    self.event("response.content_part.added", item_id=mid,
                               output_index=len(self.items) - 1, content_index=0,
                               part={"type": "output_text", "text": "", "annotations": [],
                                     "logprobs": []})]
        self.text += piece
        lp = token_logprobs(tokens) if self.body.top_logprobs is not None else []
        self.logprobs += lp
        index, mid = self.text_item
        out.append(self.event("response.output_text.delta", item_id=mid, output_index=index,
                              content_index=0, delta=piece, logprobs=lp))
        return out

    def call_delta(self, d: T.ToolCallDelta) -> list[dict[str, Any]]:
        out = self._close_text()
        found = self.calls.get(d.index)
        if found is None:
            call = T.ToolCall(d.id or _id("call"), d.name or "", "")
            found = (len(self.items), _id("fc"), call)
            self.calls[d.index] = found
            self.items.append(call_item(call, found[1], "in_progress"))
            out.append(self.event("response.output_item.added", output_index=found[0],
                                  item=self.items[-1]))
        index, fid, call = found
        if d.arguments:
            self.calls[d.index] = (index, fid, T.ToolCall(call.id, call.name,
                                                          call.arguments + d.arguments))
            out.append(self.event("response.function_call_arguments.delta", item_id=fid,
                                  output_index=index, delta=d.arguments))
        return out

    def finish(self, answer: Completion, chorus: dict[str, Any]) -> list[dict[str, Any]]:
        out = self._close_text()
        for index, fid, call in self.calls.values():
            item = call_item(call, fid, "completed")
            self.items[index] = item
            out += [self.event("response.function_call_arguments.done", item_id=fid,
                               output_index=index, arguments=call.arguments),
                    self.event("response.output_item.done", output_index=index, item=item)]
        r = response_body(self.rid, self.created, self.body, answer, self.items, chorus=chorus)
        kind = "response.incomplete" if r["status"] == "incomplete" else "response.completed"
        out.append(self.event(kind, response=r))
        return out
