"""The lean HTTP/1.1 client (http/_h1.py) against raw asyncio servers on 127.0.0.1:
keep-alive reuse, stale pooled connections, refusals, stalls, cut-off and garbage answers,
chunked, gzip and close-delimited bodies, the connection limit, and closing."""

from __future__ import annotations

import asyncio
import gc
import gzip
import json
import os
import socket
import socketserver
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest

from chorus.core.errors import (
    BadRequestError,
    MalformedResponse,
    ProviderConnectionError,
    ProviderTimeout,
)
from chorus.core.types import Completion, Request, TextDelta
from chorus.http import _h1, transport_error
from chorus.http._h1 import H1Error, H1Pool
from chorus.providers.openai import OpenAIModel

Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter
ANSWER = json.dumps({"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 1, "completion_tokens": 1}}).encode()


def reply(body: bytes = ANSWER, status: str = "200 OK", headers: str = "") -> bytes:
    return (f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{headers}"
            f"content-length: {len(body)}\r\n\r\n").encode() + body


async def read_request(reader: Reader) -> tuple[bytes, bytes]:
    """One request's head and body (raises IncompleteReadError at EOF)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head, await reader.readexactly(length)


@dataclass
class Server:
    url: str
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    ended: int = 0  # connections whose client end was closed


@asynccontextmanager
async def serve(on_request: Callable[[Server, int, Writer], Awaitable[bool]]
                ) -> AsyncIterator[Server]:
    """A keep-alive server: ``on_request(server, n_on_this_connection, writer)`` answers
    each request; it returns False to stop serving that connection (and close it)."""
    tasks: set[asyncio.Task[None]] = set()
    state = Server("")

    async def conn(reader: Reader, writer: Writer) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        state.connections += 1
        n = 0
        try:
            while True:
                head, _ = await read_request(reader)
                state.requests.append(head)
                n += 1
                if not await on_request(state, n, writer):
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            state.ended += 1
        finally:
            writer.close()

    server = await asyncio.start_server(conn, "127.0.0.1", 0)
    state.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
    try:
        yield state
    finally:
        server.close()
        await server.wait_closed()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=5)
            for task in pending:
                task.cancel()


async def answer_all(state: Server, n: int, writer: Writer) -> bool:
    writer.write(reply())
    return True


def model(url: str, **kwargs: float) -> OpenAIModel:
    return OpenAIModel("local", model_id="m", base_url=url, timeout=kwargs.get("timeout", 5))


async def test_requests_reuse_one_kept_alive_connection_and_send_the_headers() -> None:
    async with serve(answer_all) as srv:
        m = OpenAIModel("local", model_id="m", base_url=srv.url, api_key="sk-1",
                        headers={"X-Team": "a"})
        answers = [await m.complete(Request.of("hi")) for _ in range(3)]
        await m.aclose()
        await asyncio.sleep(0.05)
    assert [a.text for a in answers] == ["ok"] * 3
    assert srv.connections == 1 and len(srv.requests) == 3 and srv.ended == 1  # aclose
    head = srv.requests[0].decode().lower()
    assert head.startswith("post /v1/chat/completions http/1.1\r\n")
    host = srv.url.split("/")[2]
    for line in (f"host: {host}", "authorization: bearer sk-1", "x-team: a",
                 "content-type: application/json", "user-agent: chorus"):
        assert line in head


async def test_a_pooled_connection_the_server_closed_is_not_used() -> None:
    async def one_each(state: Server, n: int, writer: Writer) -> bool:
        writer.write(reply())  # keep-alive by default, but closed right after: stale
        return False

    async with serve(one_each) as srv:
        m = model(srv.url)
        first = await m.complete(Request.of("hi"))
        await asyncio.sleep(0.05)  # the server's close reaches the idle connection
        second = await m.complete(Request.of("hi"))
        await m.aclose()
    assert first.text == second.text == "ok"
    assert srv.connections == 2 and len(srv.requests) == 2


async def _closes_second_request(state: Server, n: int, writer: Writer) -> bool:
    if n == 1:
        writer.write(reply(json.dumps({"data": [{"id": "m"}]}).encode()
                           if state.requests[-1].startswith(b"GET") else ANSWER))
        return True
    return False  # read the request, then close without a byte of answer


async def test_a_post_the_server_may_have_read_is_not_sent_twice() -> None:
    async with serve(_closes_second_request) as srv:
        m = model(srv.url)
        await m.complete(Request.of("hi"))
        with pytest.raises(ProviderConnectionError, match="before answering") as info:
            await m.complete(Request.of("hi"))
        await m.aclose()
    assert len(srv.requests) == 2 and srv.connections == 1
    assert "\n" not in str(info.value) and "may have stopped" in str(info.value)


async def test_a_get_on_a_dropped_connection_is_retried_once_on_a_fresh_one() -> None:
    async with serve(_closes_second_request) as srv:
        m = model(srv.url)
        assert (await m.probe())[0]
        ok, _ = await m.probe()  # dropped on the reused connection, retried on a new one
        await m.aclose()
    assert ok and srv.connections == 2 and len(srv.requests) == 3


async def test_connection_close_answers_are_not_pooled() -> None:
    async def closing(state: Server, n: int, writer: Writer) -> bool:
        writer.write(reply(headers="connection: close\r\n"))
        return False

    async with serve(closing) as srv:
        m = model(srv.url)
        for _ in range(2):
            assert (await m.complete(Request.of("hi"))).text == "ok"
        await m.aclose()
    assert srv.connections == 2


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_refused_connections_are_typed() -> None:
    pool = H1Pool(2.0)
    url = f"http://127.0.0.1:{_unused_port()}/v1/models"
    with pytest.raises(H1Error) as info:
        await pool.fetch("GET", url, {})
    await pool.aclose()
    err = transport_error(info.value, model="m", url=url, timeout=2.0)
    assert info.value.kind == "connect" and isinstance(err, ProviderConnectionError)
    assert "may not be running" in str(err) and url in str(err)


async def test_a_full_accept_queue_times_out_connecting() -> None:
    # A listener that never accepts, its backlog filled: the next SYN gets no answer.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(s)
    m = model(f"http://127.0.0.1:{port}/v1", timeout=0.3)
    started = time.monotonic()
    try:
        with pytest.raises(ProviderTimeout, match="after 0.3s connecting to"):
            await m.complete(Request.of("hi"))
    finally:
        await m.aclose()
        for s in (*fillers, listener):
            s.close()
    assert time.monotonic() - started < 3


async def test_a_stall_mid_body_times_out_waiting() -> None:
    async def stall(state: Server, n: int, writer: Writer) -> bool:
        writer.write(reply()[:-5])  # all but the last bytes of the body, then nothing
        await writer.drain()
        await asyncio.sleep(1.0)
        return False

    async with serve(stall) as srv:
        m = model(srv.url, timeout=0.3)
        started = time.monotonic()
        with pytest.raises(ProviderTimeout, match="after 0.3s waiting for"):
            await m.complete(Request.of("hi"))
        elapsed = time.monotonic() - started
        await m.aclose()
    assert 0.25 < elapsed < 0.9


async def test_bytes_that_keep_coming_reset_the_read_timeout() -> None:
    async def trickle(state: Server, n: int, writer: Writer) -> bool:
        raw = reply()
        for i in range(0, len(raw), len(raw) // 5 + 1):  # 6 pieces, 0.1 s apart
            writer.write(raw[i:i + len(raw) // 5 + 1])
            await writer.drain()
            await asyncio.sleep(0.1)
        return True

    async with serve(trickle) as srv:
        m = model(srv.url, timeout=0.3)
        answer = await m.complete(Request.of("hi"))  # ~0.6 s in all, never 0.3 s silent
        await m.aclose()
    assert answer.text == "ok"


@pytest.mark.parametrize("raw", [
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nnot a chunk\r\n",
    b"HTTP/1.1 2000 Very OK\r\ncontent-length: 2\r\n\r\n{}",
])
async def test_invalid_http_is_malformed(raw: bytes) -> None:
    async def bad(state: Server, n: int, writer: Writer) -> bool:
        writer.write(raw)
        return True

    async with serve(bad) as srv:
        m = model(srv.url)
        with pytest.raises(MalformedResponse, match="did not answer with valid HTTP"):
            await m.complete(Request.of("hi"))
        await m.aclose()


async def test_a_body_cut_short_is_a_connection_error() -> None:
    async def short(state: Server, n: int, writer: Writer) -> bool:
        writer.write(reply()[:-5])
        return False

    async with serve(short) as srv:
        m = model(srv.url)
        with pytest.raises(ProviderConnectionError, match="mid-answer"):
            await m.complete(Request.of("hi"))
        await m.aclose()


async def test_close_delimited_chunked_and_gzip_bodies() -> None:
    chunked = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n"
                       for p in (ANSWER[:10], ANSWER[10:])) + b"0\r\n\r\n"
    packed = gzip.compress(ANSWER)
    answers = [
        b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n" + ANSWER,  # ends with the close
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + chunked,
        b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: "
        + str(len(packed)).encode() + b"\r\n\r\n" + packed,
    ]

    async def varied(state: Server, n: int, writer: Writer) -> bool:
        writer.write(answers[len(state.requests) - 1])
        return len(state.requests) > 1

    async with serve(varied) as srv:
        m = model(srv.url)
        texts = [(await m.complete(Request.of("hi"))).text for _ in answers]
        await m.aclose()
    assert texts == ["ok"] * 3 and srv.connections == 2


async def test_sse_streams_keep_their_connection_unless_left_far_from_the_end() -> None:
    def event(text: str) -> bytes:
        return b"data: " + json.dumps({"choices": [{"delta": {"content": text}}]}).encode() \
            + b"\n\n"

    long_tail = [0, 8000, 0, 0]  # the second answer has ~1 MB more after its first event

    async def sse(state: Server, n: int, writer: Writer) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                     b"transfer-encoding: chunked\r\n\r\n")
        tail = [event("x" * 100)] * long_tail[len(state.requests) - 1]
        for piece in (event("a"), *tail, event("b"), b"data: [DONE]\n\n"):
            writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            await writer.drain()
            await asyncio.sleep(0.01 if not tail else 0)
        writer.write(b"0\r\n\r\n")  # the body's end comes after [DONE]
        return True

    async with serve(sse) as srv:
        m = model(srv.url)
        events = [e async for e in m.stream(Request.of("hi"))]
        await asyncio.sleep(0.05)  # the end of the body, read after [DONE], pools it
        async for e in m.stream(Request.of("hi")):  # the pooled connection
            assert isinstance(e, TextDelta)
            break  # left with ~1 MB to go: that connection is closed
        await asyncio.sleep(0.05)
        async for _ in m.stream(Request.of("hi")):  # a new connection
            break  # left near the end: read to the end, then pooled
        await asyncio.sleep(0.05)
        again = [e async for e in m.stream(Request.of("hi"))]
        await m.aclose()
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["a", "b"]
    assert isinstance(events[-1], Completion) and events[-1].text == "ab"
    assert isinstance(again[-1], Completion) and again[-1].text == "ab"
    assert srv.connections == 2 and len(srv.requests) == 4


async def test_the_connection_limit_queues_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_h1, "_LIMIT", 1)

    async def slow(state: Server, n: int, writer: Writer) -> bool:
        await asyncio.sleep(0.05)
        writer.write(reply())
        return True

    async with serve(slow) as srv:
        m = model(srv.url)
        answers = await asyncio.gather(*(m.complete(Request.of("hi")) for _ in range(3)))
        await m.aclose()
    assert [a.text for a in answers] == ["ok"] * 3 and srv.connections == 1


async def test_waiting_for_a_free_connection_counts_as_connecting(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_h1, "_LIMIT", 1)

    async def stall(state: Server, n: int, writer: Writer) -> bool:
        await asyncio.sleep(0.6)
        return False

    async with serve(stall) as srv:
        m = model(srv.url, timeout=0.2)
        results = await asyncio.gather(*(m.complete(Request.of("hi")) for _ in range(2)),
                                       return_exceptions=True)
        await m.aclose()
    messages = sorted(str(r) for r in results)
    assert all(isinstance(r, ProviderTimeout) for r in results)
    assert "connecting to" in messages[0] and "waiting for" in messages[1]


async def test_a_header_with_a_line_break_is_refused_before_sending() -> None:
    async with serve(answer_all) as srv:
        m = OpenAIModel("local", model_id="m", base_url=srv.url,
                        headers={"X-Evil": "a\r\nX-Injected: 1"})
        with pytest.raises(BadRequestError, match="line break"):
            await m.complete(Request.of("hi"))
        await m.aclose()
    assert srv.requests == []


def test_a_client_used_under_two_loops_leaks_nothing() -> None:
    # filterwarnings=error: an unclosed transport's ResourceWarning would fail this. The
    # server runs in a thread, so the connection pooled under the first loop stays open.
    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            while line := self.rfile.readline():
                length = 0
                while line not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                    line = self.rfile.readline()
                self.rfile.read(length)
                self.wfile.write(reply())

    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler) as server:
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        held = [model(f"http://127.0.0.1:{server.server_address[1]}/v1")]

        async def run() -> list[str]:
            return [(await held[0].complete(Request.of("hi"))).text for _ in range(2)]

        try:
            for _ in range(2):  # each run a new loop; the first loop's pool is left behind
                assert asyncio.run(run()) == ["ok", "ok"]
            held.clear()  # dropped without aclose, its loop closed
            gc.collect()
        finally:
            server.shutdown()


async def test_proxies_and_https_use_aiohttp(monkeypatch: pytest.MonkeyPatch) -> None:
    m = model("http://127.0.0.1:1/v1")
    http = m._http
    assert http.h1("https://api.example.com/v1/x") is None
    assert http.h1("http://127.0.0.1:1/v1/x") is not None
    await http.aclose()
    monkeypatch.setitem(os.environ, "HTTP_PROXY", "http://127.0.0.1:3128")
    assert http.h1("http://127.0.0.1:1/v1/x") is None
    await http.aclose()
