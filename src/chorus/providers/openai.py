"""OpenAIModel: any OpenAI-compatible chat completions endpoint (OpenAI, vLLM, llama.cpp's
server, Together, OpenRouter ...).

    OpenAIModel("gpt", model_id="gpt-4o-mini")                       # key from OPENAI_API_KEY
    OpenAIModel("local", model_id="smollm2", base_url="http://127.0.0.1:8000/v1")

A JSON schema in ``response_format`` goes out as OpenAI structured outputs
(``{"type": "json_schema", ...}``). Servers that only know ``{"type": "json_object",
"schema": ...}`` (llama-cpp-python's) reject that; with ``json_mode: auto`` the model then
retries once in the older form and keeps using it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from chorus.core.errors import (
    BadRequestError,
    MalformedResponse,
    ProviderError,
    ServerError,
    StreamCut,
)
from chorus.core.model import StreamEvent
from chorus.core.registry import BuildContext
from chorus.core.types import (
    Completion,
    Request,
    TextDelta,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from chorus.http import (
    Transport,
    error_for_code,
    one_line,
)
from chorus.providers._base import KeyedEndpointConfig, endpoint_kwargs, estimate_tokens
from chorus.providers._keyed import KeyedProvider
from chorus.providers._openai_wire import (
    CallPieces,
    messages_body,
    read_logprobs,
    read_tool_calls,
    tool_params,
)
from chorus.providers._pace import within

__all__ = ["OpenAIModel", "OpenAIConfig", "JsonMode", "chat_payload", "parse_chat",
           "parse_extras", "estimate_tokens"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
JsonMode = Literal["auto", "json_schema", "json_object"]
_PASS_THROUGH_FORMATS = frozenset({"json_object", "json_schema"})


def response_format(schema: Mapping[str, Any], mode: str) -> dict[str, Any]:
    """The ``response_format`` body for a JSON schema, in the form ``mode`` names."""
    if schema.get("type") in _PASS_THROUGH_FORMATS:
        return dict(schema)  # already a response_format, not a schema
    if mode == "json_object":
        return {"type": "json_object", "schema": dict(schema)}
    title = str(schema.get("title") or "answer")
    name = re.sub(r"[^A-Za-z0-9_-]", "_", title)[:64]
    return {"type": "json_schema", "json_schema": {"name": name, "schema": dict(schema)}}


def chat_payload(model_id: str, request: Request, *, json_mode: str = "json_schema",
                 stream: bool = False) -> dict[str, Any]:
    """The chat completions request body for ``request`` (parameters already merged)."""
    p = request.params
    payload: dict[str, Any] = {
        "model": model_id,
        "messages": messages_body(request.messages),
        **tool_params(p),
    }
    for name in ("temperature", "top_p", "max_tokens", "seed"):
        value = p.get(name, None)
        if value is not None:
            payload[name] = value
    stop = p.get("stop", None)
    if stop:
        payload["stop"] = list(stop)
    schema = p.get("response_format", None)
    if schema is not None:
        payload["response_format"] = response_format(schema, json_mode)
    if stream:
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
    return payload


def _usage(data: Any) -> Usage | None:
    if not isinstance(data, dict):
        return None
    details = data.get("prompt_tokens_details")
    try:
        cached = int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
        return Usage(int(data.get("prompt_tokens") or 0), int(data.get("completion_tokens") or 0),
                     cached)
    except (TypeError, ValueError):
        return None


def _raise_if_error(data: Any, *, model: str, model_id: str, url: str) -> None:
    """Some servers put an error in a 200 body or in a stream chunk."""
    if isinstance(data, dict) and isinstance(data.get("error"), dict | str):
        err = data["error"]
        message = str(err.get("message", err) if isinstance(err, dict) else err)
        code = err.get("code") or err.get("type") if isinstance(err, dict) else None
        raise error_for_code(str(code) if code else None, one_line(message), model=model,
                             model_id=model_id, url=url, body=json.dumps(data)[:4000])


def parse_chat(data: Any, *, model: str, model_id: str = "", url: str = ""
               ) -> tuple[str, Usage | None, str | None]:
    """Text, usage (None when absent) and finish reason of a chat completion body."""
    _raise_if_error(data, model=model, model_id=model_id, url=url)
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        shown = one_line(json.dumps(data), 120)
        raise MalformedResponse(f"{url or 'the endpoint'} answered without `choices` ({shown});"
                                " is `base_url` an OpenAI-compatible /v1 endpoint?", model=model)
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise MalformedResponse("the answer's first choice has no `message`", model=model)
    text = message.get("content") or message.get("refusal") or ""
    if not isinstance(text, str):
        raise MalformedResponse(f"`content` is {type(text).__name__}, expected text",
                                model=model)
    return text, _usage(data.get("usage")), choice.get("finish_reason")


def parse_extras(data: Any, *, model: str
                 ) -> tuple[tuple[ToolCall, ...], tuple[TokenLogprob, ...] | None]:
    """The tool calls and token logprobs of a chat completion body that ``parse_chat``
    has read."""
    choice = data["choices"][0]
    return read_tool_calls(choice.get("message"), model=model), read_logprobs(choice)


@dataclass(slots=True)
class _StreamState:
    """What the chunks of one streamed answer add up to."""

    parts: list[str] = field(default_factory=list)
    usage: Usage | None = None
    finish_reason: str | None = None
    calls: CallPieces = field(default_factory=CallPieces)
    #: Tool-call pieces of the last chunk, for the stream to pass on.
    pending: list[ToolCallDelta] = field(default_factory=list)
    #: The log-probabilities of the last chunk's tokens.
    piece_logprobs: tuple[TokenLogprob, ...] | None = None

    def add(self, chunk: Any, *, model: str) -> str:
        """Take one chunk; return its new text (its tool-call pieces go to ``pending``)."""
        if not isinstance(chunk, dict):
            raise MalformedResponse("a stream chunk is not a JSON object", model=model)
        usage = _usage(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
        choices = chunk.get("choices") or []
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return ""
        choice = choices[0]
        self.finish_reason = choice.get("finish_reason") or self.finish_reason
        delta = choice.get("delta") or {}
        self.pending = self.calls.add(delta)
        logprobs = read_logprobs(choice)
        self.piece_logprobs = logprobs or None
        if logprobs:
            self.calls.logprobs.extend(logprobs)
        text = delta.get("content") if isinstance(delta, dict) else None
        if isinstance(text, str) and text:
            self.parts.append(text)
            return text
        return ""


def _rejects_json_schema(exc: ProviderError) -> bool:
    said = f"{exc} {exc.body or ''}".lower()
    return "response_format" in said or "json_schema" in said


class OpenAIModel(KeyedProvider):
    """A chat model behind an OpenAI-compatible ``/chat/completions`` endpoint."""

    provider = "openai"
    can_stream = True

    def __init__(
        self,
        name: str,
        *,
        model_id: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        api_key_env: str | None = "OPENAI_API_KEY",
        headers: Mapping[str, str] | None = None,
        timeout: float = 60.0,
        json_mode: JsonMode = "auto",
        transport: Transport | httpx.AsyncBaseTransport | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, model_id=model_id, base_url=base_url, api_key=api_key,
                         api_key_env=api_key_env, headers=headers, timeout=timeout,
                         transport=transport, **kwargs)
        self.json_mode: JsonMode = json_mode
        # What "auto" settled on after the server's first answer to a schema.
        self._json_form = "json_object" if json_mode == "json_object" else "json_schema"

    def _headers(self) -> dict[str, str]:
        key = self._key()
        auth = {"Authorization": f"Bearer {key}"} if key else {}
        return {**auth, **self.headers}

    def _forms(self, request: Request) -> list[str]:
        """The response_format forms to try, in order."""
        if request.params.get("response_format", None) is None or self.json_mode != "auto":
            return [self._json_form]
        return ["json_schema", "json_object"] if self._json_form == "json_schema" \
            else ["json_object"]

    @staticmethod
    def _retry_or_raise(exc: ProviderError, first: ProviderError | None, *, last: bool
                        ) -> ProviderError:
        """Return ``exc`` when the next response_format form is worth a try; else raise
        the error that explains the failure best."""
        rejected = _rejects_json_schema(exc)
        if first is not None and rejected:
            raise first  # the older form failed too: the first complaint is the real one
        if last or not rejected:
            raise exc
        return exc

    async def complete(self, request: Request) -> Completion:
        started = time.perf_counter()
        request = self.prepare(request)
        url = f"{self.base_url}/chat/completions"
        headers = self._headers()
        first: ProviderError | None = None
        forms = self._forms(request)
        for form in forms:
            payload = chat_payload(self.model_id, request, json_mode=form)
            try:
                data = await within(self._endpoint.request_json(
                    "POST", url, headers=headers, payload=payload), self.limits,
                    model=self.name)
            except (BadRequestError, ServerError) as exc:
                first = self._retry_or_raise(exc, first, last=form == forms[-1])
                continue
            self._json_form = form
            text, usage, finish = parse_chat(data, model=self.name, model_id=self.model_id,
                                             url=url)
            calls, logprobs = parse_extras(data, model=self.name)
            return self._finish(request, text, usage, started, finish, deltas=None,
                                tool_calls=calls, logprobs=logprobs)
        raise AssertionError("unreachable: _forms is never empty")

    def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        started = time.perf_counter()
        request = self.prepare(request)
        return self.paced(request, self._stream(request, started), started)

    async def _stream(self, request: Request, started: float) -> AsyncIterator[StreamEvent]:
        url = f"{self.base_url}/chat/completions"
        headers = self._headers()
        first: ProviderError | None = None
        forms = self._forms(request)
        for form in forms:
            payload = chat_payload(self.model_id, request, json_mode=form, stream=True)
            opened, deltas, done = False, True, False
            try:
                async with self._endpoint.stream(url, headers=headers, payload=payload) as events:
                    opened = True
                    self._json_form = form
                    state = _StreamState()
                    async for event in events:
                        if event.data.strip() == "[DONE]":
                            done = True
                            break
                        try:
                            chunk = json.loads(event.data)
                        except ValueError:
                            raise MalformedResponse(
                                f"a stream event is not JSON: {one_line(event.data, 80)!r}",
                                model=self.name) from None
                        _raise_if_error(chunk, model=self.name, model_id=self.model_id,
                                        url=url)
                        if event.event == "json":  # the server did not stream
                            text, usage, finish = parse_chat(chunk, model=self.name, url=url)
                            state.parts, state.usage, state.finish_reason = [text], usage, finish
                            deltas, done = False, True
                            whole, logprobs = parse_extras(chunk, model=self.name)
                            state.calls.logprobs.extend(logprobs or ())
                            if text:
                                yield TextDelta(text, self.name, logprobs or None)
                            for i, c in enumerate(whole):
                                state.calls.add({"tool_calls": [{
                                    "index": i, "id": c.id, "function": {
                                        "name": c.name, "arguments": c.arguments}}]})
                                yield ToolCallDelta(i, c.id, c.name, c.arguments)
                            continue
                        piece = state.add(chunk, model=self.name)
                        if piece:
                            yield TextDelta(piece, self.name, state.piece_logprobs)
                        for call in state.pending:
                            yield call
            except (BadRequestError, ServerError) as exc:
                if opened:
                    raise
                first = self._retry_or_raise(exc, first, last=form == forms[-1])
                continue
            if not done and state.finish_reason is None:
                # Closed without `[DONE]` or a finish reason: the answer was cut off, and
                # passing it on as complete would hide that from the caller.
                raise StreamCut("the stream closed before the answer ended (no `[DONE]`, "
                                "no finish_reason)", model=self.name)
            yield self._finish(request, "".join(state.parts), state.usage, started,
                               state.finish_reason,
                               deltas=len(state.parts) if deltas else None,
                               tool_calls=state.calls.calls(),
                               logprobs=tuple(state.calls.logprobs) or None)
            return

    def _finish(self, request: Request, text: str, usage: Usage | None, started: float,
                finish_reason: str | None, *, deltas: int | None,
                tool_calls: tuple[ToolCall, ...] = (),
                logprobs: tuple[TokenLogprob, ...] | None = None) -> Completion:
        attributes: dict[str, Any] = {"base_url": self.base_url}
        if usage is None:
            # The server reported no usage (llama.cpp's server ignores include_usage):
            # estimate, so costs and budgets still see something, and say so.
            prompt = sum(estimate_tokens(m.content) for m in request.messages)
            out = deltas if deltas else estimate_tokens(text)
            usage = Usage(prompt, out if text else 0)
            attributes["usage_estimated"] = True
        return self.finish(text, usage, started, finish_reason=finish_reason,
                           attributes=attributes, tool_calls=tool_calls, logprobs=logprobs)

    async def probe(self) -> tuple[bool, str]:
        """GET /models: whether the endpoint answers and lists this model."""
        url = f"{self.base_url}/models"
        try:
            data = await self._endpoint.request_json("GET", url, headers=self._headers())
        except ProviderError as exc:
            return False, str(exc)
        listed = data.get("data") if isinstance(data, dict) else None
        if not isinstance(listed, list):
            return False, f"{url} answered without a `data` list; is `base_url` right?"
        ids = [str(m.get("id")) for m in listed if isinstance(m, dict)]
        if ids and self.model_id not in ids:
            shown = ", ".join(ids[:5]) + (" ..." if len(ids) > 5 else "")
            return False, f"{self.base_url} does not list {self.model_id!r} (it lists {shown})"
        return True, f"{self.base_url} answers and serves {self.model_id!r}"

class OpenAIConfig(KeyedEndpointConfig):
    provider: Literal["openai"] = "openai"
    base_url: str = DEFAULT_BASE_URL
    api_key_env: str = "OPENAI_API_KEY"
    json_mode: JsonMode = "auto"


def build(cfg: OpenAIConfig, b: BuildContext) -> OpenAIModel:
    return OpenAIModel(b.name, json_mode=cfg.json_mode, **endpoint_kwargs(cfg))
