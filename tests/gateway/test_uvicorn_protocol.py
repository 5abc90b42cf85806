"""The gateway's uvicorn protocol: one write per answer, streams still sent as they go."""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any

import httpx

from chorus.config.schema import GatewayConfig
from chorus.gateway._uvicorn import GatewayHttpToolsProtocol, _Coalescing
from chorus.gateway.server import uvicorn_options
from tests.gateway.conftest import serving


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


async def test_a_head_and_its_body_go_out_as_one_write_at_once() -> None:
    raw = FakeTransport()
    t = _Coalescing(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    t.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert raw.writes == []  # held for the body
    t.write(b"{}")
    assert raw.writes == [b"HTTP/1.1 200 OK\r\n\r\n{}"]  # not waiting for the loop
    t.write(b"data: 1\n\n")
    await asyncio.sleep(0)  # nothing followed in this turn: it goes out on its own
    t.write(b"data: 2\n\n")
    await asyncio.sleep(0)
    assert raw.writes[1:] == [b"data: 1\n\n", b"data: 2\n\n"]
    assert t.get_extra_info("peername") == "info:peername"


async def test_close_sends_what_was_written_first_and_nothing_after() -> None:
    raw = FakeTransport()
    t = _Coalescing(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    t.write(b"last words")
    t.close()
    assert raw.writes == [b"last words"] and raw.closed
    t.write(b"too late")
    await asyncio.sleep(0)
    assert raw.writes == [b"last words"]


def test_the_server_uses_it_with_the_configured_limits() -> None:
    http = uvicorn_options(GatewayConfig(head_timeout_s=3, body_timeout_s=40, timeout_s=20))
    assert isinstance(http["http"], functools.partial)
    assert http["http"].func is GatewayHttpToolsProtocol
    # the body's limit is at most the request's deadline
    assert http["http"].keywords == {"head_timeout_s": 3, "body_timeout_s": 20}


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await receive()
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        for i in range(3):
            await send({"type": "http.response.body", "body": f"data: {i}\n\n".encode(),
                        "more_body": True})
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b""})
        return
    body = json.dumps({"path": scope["path"]}).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if scope["path"] == "/close":
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})



def test_answers_streams_and_closes_through_uvicorn() -> None:
    with serving(_app, lifespan="off", http=GatewayHttpToolsProtocol) as base, \
            httpx.Client(base_url=base) as client:
        assert [client.get("/a").json(), client.get("/b").json()] == [{"path": "/a"},
                                                                      {"path": "/b"}]
        with client.stream("GET", "/stream") as response:
            chunks = list(response.iter_text())
        assert "".join(chunks) == "data: 0\n\ndata: 1\n\ndata: 2\n\n"
        closing = client.get("/close")
        assert closing.json() == {"path": "/close"}
        assert closing.headers["connection"] == "close"
        assert client.get("/after").json() == {"path": "/after"}  # a new connection
