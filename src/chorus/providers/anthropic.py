"""AnthropicModel: Claude through the Messages API (``POST {base_url}/v1/messages``).

    AnthropicModel("claude", model_id="claude-sonnet-4-20250514")   # key from ANTHROPIC_API_KEY

The system prompt goes apart (top-level ``system``); ``max_tokens`` is always sent
(1024 unless set). A JSON schema in ``response_format`` becomes one forced tool whose
``input_schema`` is the schema; the tool's input comes back as the answer's JSON text.
A request's own tools, tool calls, tool results and images are translated both ways
(``tool_use``, ``tool_result`` and ``image`` blocks; ``required`` is ``any``), streamed
tool calls included (``input_json_delta`` pieces become ``ToolCallDelta``s).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from chorus.core.errors import BadRequestError, MalformedResponse, ProviderError, StreamCut
from chorus.core.model import StreamEvent
from chorus.core.registry import BuildContext
from chorus.core.types import Completion, Request, TextDelta, ToolCall, ToolCallDelta, Usage
from chorus.http import (
    Transport,
    error_for_code,
    one_line,
)
from chorus.providers._anthropic_wire import messages_body, read_tool_calls, tool_params
from chorus.providers._base import KeyedEndpointConfig, endpoint_kwargs
from chorus.providers._keyed import KeyedProvider
from chorus.providers._pace import within

__all__ = ["AnthropicModel", "AnthropicConfig", "messages_payload", "parse_message"]

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024
#: The forced tool that carries a structured answer.
ANSWER_TOOL = "answer"
# Anthropic's stop reasons, in OpenAI's words (what the rest of chorus uses).
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
           "tool_use": "stop", "refusal": "content_filter"}


def _tool_schema(schema: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """The tool's input_schema, which must describe an object; other schemas are
    wrapped in ``{"value": ...}`` (the bool says so)."""
    if schema.get("type") == "object":
        return dict(schema), False
    return {"type": "object", "properties": {"value": dict(schema)}, "required": ["value"]}, True


def messages_payload(model_id: str, request: Request, *, stream: bool = False
                     ) -> dict[str, Any]:
    """The Messages API body for ``request`` (parameters already merged)."""
    p = request.params
    max_tokens = p.get("max_tokens", None)
    payload: dict[str, Any] = {
        "model": model_id,
        "max_tokens": max_tokens if max_tokens is not None else DEFAULT_MAX_TOKENS,
        # Tool results arrive as user turns in this API; there is no "tool" role.
        "messages": messages_body(request.messages),
        **tool_params(p),
    }
    if request.system:
        payload["system"] = request.system
    for name in ("temperature", "top_p"):
        value = p.get(name, None)
        if value is not None:
            payload[name] = value
    stop = p.get("stop", None)
    if stop:
        payload["stop_sequences"] = list(stop)
    schema = p.get("response_format", None)
    if schema is not None and payload.get("tools"):
        raise BadRequestError("a JSON schema answer and tools in one request: Anthropic "
                              "models give structured answers through a tool; send one")
    if schema is not None:
        input_schema, _ = _tool_schema(schema)
        payload["tools"] = [{"name": ANSWER_TOOL, "input_schema": input_schema,
                             "description": "Give the answer in this structure."}]
        payload["tool_choice"] = {"type": "tool", "name": ANSWER_TOOL}
    if stream:
        payload["stream"] = True
    return payload


def _answer_tool(request: Request) -> str | None:
    return ANSWER_TOOL if request.params.get("response_format", None) is not None else None


def _usage(data: Any, base: Usage | None = None) -> Usage:
    """Usage from an Anthropic ``usage`` object, over ``base`` (a stream reports its
    counts in pieces: input and cache counts at the start, output at the end). Anthropic's
    ``input_tokens`` leaves out the tokens read from or written to its prompt cache; here
    they count as input too, priced apart."""
    base = base or Usage()
    if not isinstance(data, dict):
        return base

    def count(key: str, old: int) -> int:
        value = data.get(key)  # a 0 or a missing count leaves the earlier one
        return int(value) if value else old

    read = count("cache_read_input_tokens", base.cached_input_tokens)
    write = count("cache_creation_input_tokens", base.cache_write_tokens)
    plain = count("input_tokens",
                  base.input_tokens - base.cached_input_tokens - base.cache_write_tokens)
    return Usage(plain + read + write, count("output_tokens", base.output_tokens), read, write)


def _tool_text(tool_input: Any, wrapped: bool) -> str:
    if wrapped and isinstance(tool_input, dict) and "value" in tool_input:
        tool_input = tool_input["value"]
    return json.dumps(tool_input)


def parse_message(data: Any, *, model: str, wrapped: bool = False
                  ) -> tuple[str, Usage, str | None]:
    """Text (or the forced tool's input as JSON), usage and finish reason of a message."""
    if not isinstance(data, dict) or not isinstance(data.get("content"), list):
        shown = one_line(json.dumps(data), 120)
        raise MalformedResponse(f"the answer has no `content` list ({shown}); is `base_url` "
                                "the Anthropic API?", model=model)
    texts, tool = [], None
    for block in data["content"]:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            texts.append(str(block.get("text", "")))
        elif block.get("type") == "tool_use" and block.get("name") == ANSWER_TOOL:
            tool = _tool_text(block.get("input"), wrapped)
    text = tool if tool is not None else "".join(texts)
    stop = data.get("stop_reason")
    return text, _usage(data.get("usage")), _FINISH.get(stop, stop) if stop else None


@dataclass(slots=True)
class _StreamState:
    """What the events of one streamed message add up to."""

    wrapped: bool
    parts: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    stop_reason: str | None = None
    #: The tool that carries a structured answer (its pieces are the answer's text).
    answer_tool: str | None = None
    #: Content block index -> (call index, id, name, argument pieces) of the tool calls.
    calls: dict[int, tuple[int, str, str, list[str]]] = field(default_factory=dict)
    #: Tool-call pieces of the last event, for the stream to pass on.
    pending: list[ToolCallDelta] = field(default_factory=list)

    def add(self, kind: str, data: Any, *, model: str, model_id: str) -> str:
        """Take one event; return the text it adds (may be empty)."""
        if not isinstance(data, dict):
            raise MalformedResponse(f"a {kind!r} stream event is not a JSON object",
                                    model=model)
        kind = str(data.get("type") or kind)
        self.pending = []
        if kind == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") == "tool_use" and block.get("name") != self.answer_tool:
                call: tuple[int, str, str, list[str]] = (
                    len(self.calls), str(block.get("id") or ""), str(block.get("name")), [])
                self.calls[int(data.get("index", len(self.calls)))] = call
                self.pending = [ToolCallDelta(call[0], call[1], call[2], "")]
            return ""
        if kind == "content_block_delta" and int(data.get("index", -1)) in self.calls:
            index, _, _, pieces = self.calls[int(data["index"])]
            piece = (data.get("delta") or {}).get("partial_json")
            if isinstance(piece, str) and piece:
                pieces.append(piece)
                self.pending = [ToolCallDelta(index, None, None, piece)]
            return ""
        if kind == "error":
            err: dict[str, Any] = data["error"] if isinstance(data.get("error"), dict) else {}
            raise error_for_code(str(err.get("type") or "api_error"),
                                 one_line(str(err.get("message") or "stream error")),
                                 model=model, model_id=model_id, body=json.dumps(data))
        if kind == "message_start":
            self.usage = _usage((data.get("message") or {}).get("usage"), self.usage)
        elif kind == "message_delta":
            self.usage = _usage(data.get("usage"), self.usage)
            self.stop_reason = (data.get("delta") or {}).get("stop_reason") or self.stop_reason
        elif kind == "content_block_delta":
            delta = data.get("delta") or {}
            piece = delta.get("text") if delta.get("type") == "text_delta" else \
                delta.get("partial_json") if delta.get("type") == "input_json_delta" else None
            if isinstance(piece, str) and piece:
                self.parts.append(piece)
                # A wrapped answer is only known once whole; it is sent at the end.
                return "" if self.wrapped and delta.get("type") == "input_json_delta" else piece
        return ""

    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(ToolCall(cid, name, "".join(pieces) or "{}")
                     for _, cid, name, pieces in sorted(self.calls.values()))

    def text(self) -> str:
        joined = "".join(self.parts)
        if not self.wrapped:
            return joined
        try:
            return _tool_text(json.loads(joined), True)
        except ValueError:
            return joined


class AnthropicModel(KeyedProvider):
    """A Claude model behind the Anthropic Messages API."""

    provider = "anthropic"
    can_stream = True
    default_prefill = True

    def __init__(
        self,
        name: str,
        *,
        model_id: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        api_key_env: str | None = "ANTHROPIC_API_KEY",
        anthropic_version: str = API_VERSION,
        headers: Mapping[str, str] | None = None,
        timeout: float = 60.0,
        transport: Transport | httpx.AsyncBaseTransport | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, model_id=model_id, base_url=base_url, api_key=api_key,
                         api_key_env=api_key_env, headers=headers, timeout=timeout,
                         transport=transport, **kwargs)
        self.anthropic_version = anthropic_version

    def _headers(self) -> dict[str, str]:
        key = self._key()
        out = {"anthropic-version": self.anthropic_version, **self.headers}
        if key:
            out["x-api-key"] = key
        return out

    @staticmethod
    def _wrapped(request: Request) -> bool:
        schema = request.params.get("response_format", None)
        return schema is not None and _tool_schema(schema)[1]

    async def complete(self, request: Request) -> Completion:
        started = time.perf_counter()
        request = self.prepare(request)
        data = await within(self._endpoint.request_json(
            "POST", f"{self.base_url}/v1/messages", headers=self._headers(),
            payload=messages_payload(self.model_id, request)), self.limits, model=self.name)
        text, usage, finish = parse_message(data, model=self.name,
                                            wrapped=self._wrapped(request))
        calls = read_tool_calls(data, skip=_answer_tool(request), model=self.name)
        return self.finish(text, usage, started,
                           finish_reason="tool_calls" if calls else finish,
                           attributes={"base_url": self.base_url}, tool_calls=calls)

    def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        started = time.perf_counter()
        request = self.prepare(request)
        return self.paced(request, self._stream(request, started), started)

    async def _stream(self, request: Request, started: float) -> AsyncIterator[StreamEvent]:
        state = _StreamState(wrapped=self._wrapped(request), answer_tool=_answer_tool(request))
        ended = False
        async with self._endpoint.stream(
                f"{self.base_url}/v1/messages", headers=self._headers(),
                payload=messages_payload(self.model_id, request, stream=True)) as events:
            async for event in events:
                if event.event == "ping" or not event.data.strip():
                    continue
                try:
                    data = json.loads(event.data)
                except ValueError:
                    raise MalformedResponse(
                        f"a stream event is not JSON: {one_line(event.data, 80)!r}",
                        model=self.name) from None
                piece = state.add(event.event, data, model=self.name, model_id=self.model_id)
                if piece:
                    yield TextDelta(piece, self.name)
                for call in state.pending:
                    yield call
                if data.get("type") == "message_stop":
                    ended = True
                    break
        if not ended:
            raise StreamCut("the stream ended before `message_stop`", model=self.name)
        text = state.text()
        if state.wrapped and text:
            yield TextDelta(text, self.name)
        stop = state.stop_reason
        calls = state.tool_calls()
        yield self.finish(text, state.usage, started,
                          finish_reason="tool_calls" if calls else
                          _FINISH.get(stop, stop) if stop else None,
                          attributes={"base_url": self.base_url}, tool_calls=calls)

    async def probe(self) -> tuple[bool, str]:
        """GET /v1/models: whether the endpoint answers with this key."""
        try:
            await self._endpoint.request_json("GET", f"{self.base_url}/v1/models",
                                              headers=self._headers())
        except ProviderError as exc:
            return False, str(exc)
        return True, f"{self.base_url} answers"



class AnthropicConfig(KeyedEndpointConfig):
    provider: Literal["anthropic"] = "anthropic"
    base_url: str = DEFAULT_BASE_URL
    api_key_env: str = "ANTHROPIC_API_KEY"
    anthropic_version: str = API_VERSION


def build(cfg: AnthropicConfig, b: BuildContext) -> AnthropicModel:
    return AnthropicModel(b.name, anthropic_version=cfg.anthropic_version,
                          **endpoint_kwargs(cfg))
