"""The two transports of the HTTP providers (what runs without an injected httpx
transport): each test below runs through the lean client (plain http://) and through
aiohttp (what https and a proxy set in the environment use): error mapping, SSE over
awkward chunking, cut-off streams, and a client never closed."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from chorus.core.errors import (
    MalformedResponse,
    ProviderConnectionError,
    ProviderTimeout,
    RateLimitError,
)
from chorus.core.types import Completion, Request, TextDelta
from chorus.http import transport_error
from chorus.providers.openai import OpenAIModel
from tests.providers.test_openai import tcp_server

Conn = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
URL = "http://127.0.0.1:1/v1/chat/completions"


@pytest.fixture(autouse=True, params=["h1", "aiohttp"])
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A proxy in the environment sends requests through aiohttp (which honours NO_PROXY,
    so they still go straight to 127.0.0.1)."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    if request.param == "aiohttp":
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    return str(request.param)


def used(model: OpenAIModel) -> str:
    """Which transport ``model`` went through."""
    return "h1" if model._http._h1 is not None else "aiohttp"


def test_aiohttp_errors_map_by_kind() -> None:
    kw = {"model": "m", "url": URL, "timeout": 2.0}
    connect = transport_error(aiohttp.ConnectionTimeoutError("slow"), **kw)
    read = transport_error(aiohttp.SocketTimeoutError("slow"), **kw)
    dropped = transport_error(aiohttp.ServerDisconnectedError(), **kw)
    cut = transport_error(aiohttp.ClientPayloadError("Response payload is not completed"), **kw)
    bad_url = transport_error(aiohttp.InvalidURL("htp://x"), **kw)
    assert isinstance(connect, ProviderTimeout) and "2s connecting to" in str(connect)
    assert isinstance(read, ProviderTimeout) and "waiting for" in str(read)
    assert isinstance(dropped, ProviderConnectionError) and "may have stopped" in str(dropped)
    assert isinstance(cut, ProviderConnectionError)
    assert isinstance(bad_url, ProviderConnectionError) and "base_url" in str(bad_url)
    assert all("\n" not in str(e) for e in (connect, read, dropped, cut, bad_url))


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return await reader.readexactly(length)


def _answer(status: str, headers: str, body: bytes) -> bytes:
    return (f"HTTP/1.1 {status}\r\n{headers}content-length: {len(body)}\r\n\r\n").encode() \
        + body


def _replying(*raw: bytes, pause: float = 0.0, close: bool = True) -> Conn:
    """A connection handler that reads one request and writes ``raw`` piece by piece."""
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        for piece in raw:
            writer.write(piece)
            await writer.drain()
            if pause:
                await asyncio.sleep(pause)
        if close:
            writer.close()
    return handler


async def test_rate_limit_status_and_retry_after_reach_the_typed_error(transport: str) -> None:
    body = json.dumps({"error": {"message": "slow down", "type": "rate_limit_error"}}).encode()
    reply = _answer("429 Too Many Requests", "content-type: application/json\r\n"
                    "retry-after: 7\r\n", body)
    async with tcp_server(_replying(reply)) as base_url:
        model = OpenAIModel("local", model_id="m", base_url=base_url, timeout=5)
        with pytest.raises(RateLimitError) as info:
            await model.complete(Request.of("hi"))
        assert used(model) == transport
        await model.aclose()
    assert info.value.retry_after == 7.0 and "slow down" in str(info.value)


def _chunked(*events: str) -> list[bytes]:
    """SSE events as HTTP chunks, each event cut in two mid-way (and mid-character)."""
    out = [b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
           b"transfer-encoding: chunked\r\n\r\n"]
    for event in events:
        raw = event.encode()
        for part in (raw[: len(raw) // 2 + 1], raw[len(raw) // 2 + 1:]):
            out.append(f"{len(part):x}\r\n".encode() + part + b"\r\n")
    return out


def _delta(text: str) -> str:
    return "data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": text}}]},
                                 ensure_ascii=False) + "\r\n\r\n"


async def test_stream_split_across_chunks_and_characters_joins_exactly(transport: str) -> None:
    usage = 'data: {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}\n\n'
    pieces = [*_chunked(_delta("héllo "), _delta("wörld ✓"), usage, "data: [DONE]\n\n"),
              b"0\r\n\r\n"]
    async with tcp_server(_replying(*pieces, pause=0.01)) as base_url:
        model = OpenAIModel("local", model_id="m", base_url=base_url, timeout=5)
        events = [e async for e in model.stream(Request.of("hi"))]
        assert used(model) == transport
        await model.aclose()
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    final = events[-1]
    assert deltas == ["héllo ", "wörld ✓"]
    assert isinstance(final, Completion) and final.text == "héllo wörld ✓"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (3, 2)


async def test_a_stream_cut_off_mid_way_raises_instead_of_ending_cleanly(transport: str) -> None:
    # Two deltas, then the connection drops without the terminating chunk.
    async with tcp_server(_replying(*_chunked(_delta("half "), _delta("an answer")),
                                    pause=0.01)) as base_url:
        model = OpenAIModel("local", model_id="m", base_url=base_url, timeout=5)
        seen: list[object] = []
        with pytest.raises(ProviderConnectionError):
            async for event in model.stream(Request.of("hi")):
                seen.append(event)
        assert used(model) == transport
        await model.aclose()
    assert not any(isinstance(e, Completion) for e in seen)


def _ok_server_handler() -> Conn:
    body = json.dumps({"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 1, "completion_tokens": 1}}).encode()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # keep-alive: answer every request on this connection
                await _read_request(reader)
                writer.write(_answer("200 OK", "content-type: application/json\r\n", body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
    return handler


async def test_a_model_dropped_without_aclose_closes_its_connections_quietly(
        transport: str) -> None:
    # filterwarnings=error: aiohttp's "Unclosed client session" / "Unclosed connector"
    # ResourceWarnings would fail this test; the server's handler sees the connection end.
    async with tcp_server(_ok_server_handler()) as base_url:
        model = OpenAIModel("local", model_id="m", base_url=base_url, timeout=5)
        answers = [await model.complete(Request.of("hi")) for _ in range(2)]
        assert used(model) == transport
        del model  # never aclose()d
        gc.collect()
        await asyncio.sleep(0.05)  # the closed sockets reach the server's handler
    assert [a.text for a in answers] == ["ok", "ok"]


async def test_not_http_at_all_is_malformed(transport: str) -> None:
    async with tcp_server(_replying(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")) as base_url:
        model = OpenAIModel("local", model_id="m", base_url=base_url, timeout=5)
        with pytest.raises(MalformedResponse, match="valid HTTP"):
            await model.complete(Request.of("hi"))
        assert used(model) == transport
        await model.aclose()
