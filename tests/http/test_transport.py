"""One transport interface: the public MockTransport drives the same Endpoint code (encoding,
status and failure mapping, server-sent events) that the real transports do."""

from __future__ import annotations

import json

import httpx
import pytest

from chorus.core.errors import ProviderConnectionError, RateLimitError, ServerError
from chorus.core.types import Completion, Request, TextDelta
from chorus.http import (
    AiohttpTransport,
    H1Transport,
    HttpClient,
    HttpRequest,
    HttpResponse,
    HttpxTransport,
    MockTransport,
    TransportFailure,
)
from chorus.providers.openai import OpenAIModel

ANSWER = {"id": "x", "object": "chat.completion", "model": "m",
          "choices": [{"index": 0, "finish_reason": "stop",
                       "message": {"role": "assistant", "content": "Paris"}}],
          "usage": {"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8}}


def _model(handler: object) -> tuple[OpenAIModel, MockTransport]:
    mock = MockTransport(handler)  # type: ignore[arg-type]
    return OpenAIModel("m", base_url="http://test/v1", api_key="k", transport=mock), mock


async def test_an_answer_comes_back_through_the_production_path() -> None:
    model, mock = _model(lambda request: HttpResponse(200, json=ANSWER))
    out = await model.complete(Request.of("Capital of France?"))
    assert out.text == "Paris" and out.usage.output_tokens == 1
    sent = mock.requests[0]
    assert (sent.method, sent.url) == ("POST", "http://test/v1/chat/completions")
    assert sent.headers["Authorization"] == "Bearer k" and not sent.stream
    assert json.loads(sent.body or b"")["messages"][-1]["content"] == "Capital of France?"


async def test_statuses_and_failures_map_to_the_typed_errors() -> None:
    model, _ = _model(lambda request: HttpResponse(
        429, {"Retry-After": "3"}, json={"error": {"message": "slow down"}}))
    with pytest.raises(RateLimitError) as info:
        await model.complete(Request.of("q"))
    assert info.value.retry_after == 3

    def refuse(request: HttpRequest) -> HttpResponse:
        raise TransportFailure("connect", "connection refused")

    model, _ = _model(refuse)
    with pytest.raises(ProviderConnectionError, match="cannot connect to http://test/v1"):
        await model.complete(Request.of("q"))


async def test_a_stream_is_read_as_server_sent_events() -> None:
    def event(obj: object) -> bytes:
        return b"data: " + json.dumps(obj).encode() + b"\n\n"

    chunks = [event({"choices": [{"index": 0, "delta": {"content": "Pa"}}]}),
              event({"choices": [{"index": 0, "delta": {"content": "ris"},
                                  "finish_reason": "stop"}]}),
              b"data: [DONE]\n\n"]

    async def handler(request: HttpRequest) -> HttpResponse:
        assert request.stream
        return HttpResponse(200, {"content-type": "text/event-stream"}, chunks=chunks)

    model, _ = _model(handler)
    events = [e async for e in model.stream(Request.of("q"))]
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Pa", "ris"]
    assert isinstance(events[-1], Completion) and events[-1].text == "Paris"


async def test_a_streamed_error_status_is_typed_before_any_piece() -> None:
    model, _ = _model(lambda request: HttpResponse(503, json={"error": {"message": "busy"}}))
    with pytest.raises(ServerError, match="busy"):
        async for _ in model.stream(Request.of("q")):
            pass


async def test_each_url_gets_its_transport() -> None:
    client = HttpClient(timeout=5)
    assert isinstance(client.transport("http://127.0.0.1:9/v1"), H1Transport)
    assert isinstance(client.transport("https://api.example.com/v1"), AiohttpTransport)
    await client.aclose()
    given = HttpClient(timeout=5, transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    assert isinstance(given.transport("http://x/v1"), HttpxTransport)
    await given.aclose()
