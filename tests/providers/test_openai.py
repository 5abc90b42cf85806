"""OpenAIModel: status mapping through MockTransport, real failures on 127.0.0.1, and
real calls to llama-cpp-python's OpenAI-compatible server (marked ``server``)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from chorus.config.builder import Config
from chorus.core.errors import (
    AuthenticationError,
    BadRequestError,
    ContextLengthError,
    MalformedResponse,
    ModelNotFoundError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeout,
    RateLimitError,
    ServerError,
)
from chorus.core.model import StreamEvent
from chorus.core.types import Completion, Request, TextDelta, Usage
from chorus.providers.openai import OpenAIModel, chat_payload

Handler = Callable[[httpx.Request], httpx.Response]
OK_BODY = {
    "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14},
}


def mocked(handler: Handler, **kwargs: Any) -> OpenAIModel:
    kwargs.setdefault("api_key", "sk-test")
    return OpenAIModel("gpt", model_id=kwargs.pop("model_id", "gpt-4o-mini"),
                       transport=httpx.MockTransport(handler), **kwargs)


async def collect(model: OpenAIModel, request: Request) -> list[StreamEvent]:
    return [event async for event in model.stream(request)]


# -- the request we send --------------------------------------------------------------

async def test_request_body_headers_and_usage_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json=OK_BODY)

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    model = mocked(handler, api_key=None, headers={"X-Team": "chorus"})
    monkeypatch.setenv("OPENAI_API_KEY", "sk-late")  # read at call time, not at build time
    out = await model.complete(Request.of("Capital of France?", system="Be brief.",
                                          temperature=0, max_tokens=5, stop=["\n"], seed=7))
    await model.aclose()
    (req,) = sent
    assert str(req.url) == "https://api.openai.com/v1/chat/completions"
    assert req.headers["authorization"] == "Bearer sk-late"
    assert req.headers["x-team"] == "chorus"
    assert json.loads(req.content) == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": "Capital of France?"}],
        "temperature": 0, "max_tokens": 5, "stop": ["\n"], "seed": 7,
    }
    assert out.text == "Paris" and out.usage == Usage(12, 2)
    assert out.cost_usd == pytest.approx((12 * 0.15 + 2 * 0.60) / 1e6)


def test_json_schema_goes_out_as_structured_outputs_or_json_object() -> None:
    schema = {"title": "City answer", "type": "object",
              "properties": {"city": {"type": "string"}}}
    request = Request.of("x", response_format=schema)
    assert chat_payload("m", request)["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "City_answer", "schema": schema}}
    assert chat_payload("m", request, json_mode="json_object")["response_format"] == {
        "type": "json_object", "schema": schema}
    streamed = chat_payload("m", request, stream=True)
    assert streamed["stream"] is True and streamed["stream_options"] == {"include_usage": True}


async def test_missing_key_names_the_variable_but_localhost_needs_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MY_OPENAI_KEY", raising=False)
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json=OK_BODY)

    remote = mocked(handler, api_key=None, api_key_env="MY_OPENAI_KEY")
    assert remote.usable()[0] is False
    with pytest.raises(AuthenticationError, match="set the environment variable MY_OPENAI_KEY"
                       ) as info:
        await remote.complete(Request.of("hi"))
    assert "\n" not in str(info.value) and sent == []
    local = mocked(handler, api_key=None, api_key_env="MY_OPENAI_KEY",
                   base_url="http://localhost:9/v1")
    assert local.usable() == (True, "ok")
    await local.complete(Request.of("hi"))
    assert "authorization" not in sent[0].headers
    await remote.aclose()
    await local.aclose()


# -- statuses and bodies mapped to the error tree --------------------------------------

def _error(status: int, code: str | None, message: str, headers: dict[str, str] | None = None
           ) -> Handler:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": code}}
    return lambda request: httpx.Response(status, json=body, headers=headers or {})


@pytest.mark.parametrize(
    ("handler", "error", "fragment"),
    [
        (_error(401, "invalid_api_key", "Incorrect API key provided"), AuthenticationError,
         "check the key in OPENAI_API_KEY"),
        (_error(403, None, "Project does not have access"), AuthenticationError,
         "permissions"),
        (_error(404, "model_not_found", "The model `gpt-9` does not exist"),
         ModelNotFoundError, "check `model:`"),
        (_error(400, "model_not_found", "The model `gpt-9` does not exist"),
         ModelNotFoundError, "gpt-4o-mini"),
        (_error(400, "context_length_exceeded", "maximum context length is 128000 tokens"),
         ContextLengthError, "shorten the messages"),
        (_error(400, None, "'temperature' must be at most 2"), BadRequestError,
         "fix the request"),
        (_error(429, "rate_limit_exceeded", "Rate limit reached", {"Retry-After": "7"}),
         RateLimitError, "retry after 7s"),
        (_error(500, None, "The server had an error"), ServerError, "(500)"),
        (lambda r: httpx.Response(503, text="<html>Service Unavailable</html>"), ServerError,
         "(503)"),
    ],
)
async def test_status_maps_to_the_error_tree(handler: Handler, error: type[ProviderError],
                                             fragment: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    model = mocked(handler, api_key=None)
    with pytest.raises(error) as info:
        await model.complete(Request.of("hi"))
    await model.aclose()
    assert type(info.value) is error
    message = str(info.value)
    assert "\n" not in message and fragment in message
    assert info.value.status_code is not None and info.value.body
    if isinstance(info.value, RateLimitError):
        assert info.value.retry_after == 7.0


@pytest.mark.parametrize(
    ("response", "fragment"),
    [
        (httpx.Response(200, text="<html>a login page</html>"), "not JSON"),
        (httpx.Response(200, json={"object": "list", "data": []}), "without `choices`"),
        (httpx.Response(200, json={"choices": [{"message": {"content": 3}}]}), "content"),
    ],
)
async def test_bodies_without_an_answer_are_malformed(response: httpx.Response,
                                                      fragment: str) -> None:
    model = mocked(lambda request: response)
    with pytest.raises(MalformedResponse, match=fragment):
        await model.complete(Request.of("hi"))
    await model.aclose()


# -- json_mode: auto falls back to the older response_format form -----------------------

async def test_auto_json_mode_falls_back_once_and_remembers() -> None:
    forms: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        form = json.loads(request.content)["response_format"]["type"]
        forms.append(form)
        if form == "json_schema":
            return httpx.Response(500, json={"error": {
                "message": "1 validation error: response_format.type Input should be "
                           "'text' or 'json_object'", "type": "internal_server_error"}})
        return httpx.Response(200, json={**OK_BODY, "choices": [{
            "message": {"content": '{"city": "Paris"}'}, "finish_reason": "stop"}]})

    model = mocked(handler)
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    out = await model.complete(Request.of("x", response_format=schema))
    events = await collect(model, Request.of("x", response_format=schema))
    await model.aclose()
    assert json.loads(out.text) == {"city": "Paris"}
    assert isinstance(events[-1], Completion) and json.loads(events[-1].text) == {
        "city": "Paris"}
    assert forms == ["json_schema", "json_object", "json_object"]

    strict = mocked(handler, json_mode="json_schema")
    with pytest.raises(ServerError, match="response_format"):
        await strict.complete(Request.of("x", response_format=schema))
    await strict.aclose()


async def test_when_both_forms_are_rejected_the_first_complaint_is_raised() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        form = json.loads(request.content).get("response_format", {}).get("type")
        return httpx.Response(400, json={"error": {
            "message": f"response_format {form} is not supported", "code": None}})

    model = mocked(handler)
    with pytest.raises(BadRequestError, match="json_schema is not supported"):
        await model.complete(Request.of("x", response_format={"type": "object"}))
    with pytest.raises(BadRequestError, match="None is not supported"):  # no schema: no retry
        await model.complete(Request.of("x"))
    await model.aclose()


# -- streaming (OpenAI's own wire format) ----------------------------------------------

async def test_stream_reads_include_usage_chunk() -> None:
    chunks = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
        {"choices": [{"index": 0, "delta": {"content": "Hel"}}]},
        {"choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2}},
    ]
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, text=body)

    model = mocked(handler)
    events = await collect(model, Request.of("hi"))
    await model.aclose()
    assert sent[0]["stream_options"] == {"include_usage": True}
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hel", "lo"]
    final = events[-1]
    assert isinstance(final, Completion) and final.text == "Hello"
    assert final.usage == Usage(9, 2) and final.finish_reason == "stop"
    assert final.trace is not None and "usage_estimated" not in final.trace.attributes


async def test_a_server_that_ignores_stream_still_gives_deltas_and_usage() -> None:
    model = mocked(lambda request: httpx.Response(200, json=OK_BODY))
    events = await collect(model, Request.of("hi"))
    await model.aclose()
    assert [type(e) for e in events] == [TextDelta, Completion]
    assert isinstance(events[-1], Completion) and events[-1].usage == Usage(12, 2)


async def test_error_chunk_mid_stream_raises() -> None:
    body = ('data: {"choices": [{"delta": {"content": "a"}}]}\n\n'
            'data: {"error": {"message": "overloaded", "code": "server_error"}}\n\n')

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, text=body)

    model = mocked(handler)
    with pytest.raises(ServerError, match="overloaded"):
        await collect(model, Request.of("hi"))
    await model.aclose()


# -- real failures on 127.0.0.1 ---------------------------------------------------------

def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def tcp_server(on_connect: Callable[[asyncio.StreamReader, asyncio.StreamWriter],
                                          Any]) -> AsyncIterator[str]:
    """A tiny TCP server on 127.0.0.1; yields its /v1 base URL."""
    handlers: set[asyncio.Task[Any]] = set()

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        await on_connect(reader, writer)

    server = await asyncio.start_server(tracked, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.close()
        await server.wait_closed()
        if handlers:  # let each connection's handler finish so no task is left pending
            _, pending = await asyncio.wait(handlers, timeout=5)
            for task in pending:
                task.cancel()


async def test_connection_refused_names_the_url() -> None:
    base_url = f"http://127.0.0.1:{_unused_port()}/v1"
    model = OpenAIModel("local", model_id="m", base_url=base_url, timeout=5)
    with pytest.raises(ProviderConnectionError) as info:
        await model.complete(Request.of("hi"))
    await model.aclose()
    message = str(info.value)
    assert base_url in message and "may not be running" in message and "\n" not in message
    assert model.usable() == (True, "ok")  # a local endpoint needs no key
    ok, reason = await model.probe()
    await model.aclose()
    assert not ok and "may not be running" in reason


async def test_a_server_that_never_answers_times_out_within_the_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):  # read the request, answer nothing, until EOF
            pass
        writer.close()

    async with tcp_server(silent) as base_url:
        model = OpenAIModel("local", model_id="m", base_url=base_url, timeout=0.5)
        started = time.monotonic()
        with pytest.raises(ProviderTimeout, match="timed out after 0.5s"):
            await model.complete(Request.of("hi"))
        elapsed = time.monotonic() - started
        await model.aclose()
    assert 0.4 < elapsed < 5


@pytest.mark.parametrize(
    "reply",
    [b"garbage, not HTTP\r\n\r\n",
     b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nnot json!"],
)
async def test_a_server_that_answers_garbage_is_malformed(reply: bytes) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        writer.write(reply)
        await writer.drain()
        writer.close()

    async with tcp_server(garbage) as base_url:
        model = OpenAIModel("local", model_id="m", base_url=base_url, timeout=5)
        with pytest.raises(MalformedResponse) as info:
            await model.complete(Request.of("hi"))
        await model.aclose()
    assert "\n" not in str(info.value) and "base_url" in str(info.value)


# -- a real OpenAI-compatible server: llama-cpp-python serving SmolLM2 ------------------

def served(server: Any, **kwargs: Any) -> OpenAIModel:
    return OpenAIModel("smol", model_id=kwargs.pop("model_id", server.model),
                       base_url=server.base_url, timeout=60, **kwargs)


@pytest.mark.server
async def test_server_completion_reports_usage(llama_server: Any) -> None:
    model = served(llama_server)
    out = await model.complete(Request.of("What is the capital of France?", max_tokens=12,
                                          temperature=0))
    await model.aclose()
    assert out.text.strip()
    assert out.usage.input_tokens > 5 and 0 < out.usage.output_tokens <= 12
    assert out.trace is not None and "usage_estimated" not in out.trace.attributes
    assert out.cost_usd == 0.0  # not a known hosted model, no price given
    assert out.finish_reason in ("stop", "length")


@pytest.mark.server
async def test_server_stream_deltas_join_to_the_final_text(llama_server: Any) -> None:
    model = served(llama_server)
    events = await collect(model, Request.of("Name three colors.", max_tokens=12,
                                             temperature=0))
    await model.aclose()
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    final = events[-1]
    assert isinstance(final, Completion)
    assert len(deltas) > 1 and "".join(deltas) == final.text
    assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0
    assert all(isinstance(e, TextDelta) for e in events[:-1])


@pytest.mark.server
async def test_server_json_schema_answer_parses_to_the_asked_shape(llama_server: Any) -> None:
    schema = {"type": "object",
              "properties": {"city": {"type": "string", "maxLength": 20},
                             "sunny": {"type": "boolean"}},
              "required": ["city", "sunny"]}
    model = served(llama_server)
    out = await model.complete(Request.of("Name a city and whether it is sunny, as JSON.",
                                          response_format=schema, max_tokens=48,
                                          temperature=0))
    await model.aclose()
    value = json.loads(out.text)
    assert set(value) == {"city", "sunny"}
    assert isinstance(value["city"], str) and isinstance(value["sunny"], bool)


@pytest.mark.server
async def test_server_prompt_too_long_is_a_context_length_error(llama_server: Any) -> None:
    model = served(llama_server)
    with pytest.raises(ContextLengthError, match="context window"):
        await model.complete(Request.of("word " * 3000, max_tokens=4))
    await model.aclose()


@pytest.mark.server
async def test_server_probe_knows_which_models_it_serves(llama_server: Any) -> None:
    # llama-cpp-python's server answers every model name with its one model, so an
    # unknown name shows only in the list that /models returns.
    good, unknown = served(llama_server), served(llama_server, model_id="no-such-model")
    ok, reason = await good.probe()
    assert ok, reason
    ok, reason = await unknown.probe()
    assert not ok and "no-such-model" in reason and llama_server.model in reason
    await good.aclose()
    await unknown.aclose()


@pytest.mark.server
async def test_server_through_yaml(llama_server: Any) -> None:
    config = Config.from_text(
        "models:\n"
        "  smol:\n"
        "    provider: openai\n"
        f"    model: {llama_server.model}\n"
        f"    base_url: {llama_server.base_url}\n"
        "    timeout: 60\n"
        "    params: {max_tokens: 8, temperature: 0}\n"
    )
    model = config.get("smol")
    assert isinstance(model, OpenAIModel)
    out = await model.complete(Request.of("Say hi."))
    await model.aclose()
    assert out.text.strip() and out.model == "smol"
    assert 0 < out.usage.output_tokens <= 8
