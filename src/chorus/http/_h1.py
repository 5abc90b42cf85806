"""A lean HTTP/1.1 keep-alive client for plain ``http://`` upstreams: an asyncio Protocol
over httptools' response parser (http/_h1_conn.py), and here a small connection
pool per client.

On a gateway's hot path (a vLLM or llama.cpp server on the same host or network) aiohttp's
per-request machinery cost about as much as all the gateway's own work; this does one
write per request and one wake-up per answer. https, and any proxy set in the
environment, stay with aiohttp (http/_aio.py).

Kept from aiohttp: ``timeout`` bounds getting a connection (waiting for a free one
included) and each wait for bytes of the answer, not the whole answer; at most 256
connections at once, idle ones closed after 15 s. A pooled connection the server has
closed is never written to (the loop sees its end first). A request whose reused
connection ends before any byte of the answer is sent again once, on a fresh connection,
only when its method is idempotent: a POST that reached the server may have been
processed (and paid for), so it fails with ``closed`` instead.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from chorus.http._h1_conn import Connection, H1Error, H1Response, H1Stream, Key

__all__ = ["H1Error", "H1Pool", "H1Response", "H1Stream"]

_LIMIT = 256
_IDLE_S = 15.0
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


class H1Pool:
    """Keep-alive connections of one client, by host and port, on the running loop."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.loop = asyncio.get_running_loop()
        self.conns: set[Connection] = set()
        self._idle: dict[Key, deque[Connection]] = {}
        self._busy = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._starts: dict[tuple[str, str], tuple[Key, bytes]] = {}
        self._blocks: dict[tuple[tuple[str, str], ...], bytes] = {}

    def _request(self, method: str, url: str, headers: Mapping[str, str],
                 body: bytes | None) -> tuple[Key, bytes]:
        known = self._starts.get((method, url))
        if known is None:
            parts = urlsplit(url)
            if parts.scheme != "http" or not parts.hostname:
                raise H1Error("connect", "not an http:// URL")
            try:
                port = parts.port or 80
            except ValueError as exc:
                raise H1Error("connect", str(exc)) from None
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            netloc = parts.netloc.rpartition("@")[2]
            known = ((parts.hostname, port),
                     f"{method} {path} HTTP/1.1\r\nHost: {netloc}\r\n".encode())
            if len(self._starts) > 256:
                self._starts.clear()
            self._starts[(method, url)] = known
        key, start = known
        items = tuple(headers.items())
        block = self._blocks.get(items)
        if block is None:  # a provider sends the same few headers every time
            lines = "".join([f"{k}: {v}\r\n" for k, v in items])
            if lines.count("\n") != len(items) or lines.count("\r") != len(items):
                raise H1Error("header", "a header name or value contains a line break")
            if not any(k.lower() == "user-agent" for k in headers):
                lines += "User-Agent: chorus\r\n"
            block = lines.encode()
            if len(self._blocks) > 64:
                self._blocks.clear()
            self._blocks[items] = block
        if body is None:
            return key, start + block + b"\r\n"
        return key, b"".join((start, block, b"Content-Length: %d\r\n\r\n" % len(body), body))

    async def fetch(self, method: str, url: str, headers: Mapping[str, str],
                    body: bytes | None = None) -> H1Response:
        key, data = self._request(method, url, headers, body)
        conn = await self._exchange(method, key, data, False)
        answer = H1Response(conn.status, conn.headers, conn.take())
        self._release(conn)
        return answer

    async def start(self, method: str, url: str, headers: Mapping[str, str],
                    body: bytes | None = None) -> H1Stream:
        """An answer whose head has arrived, its body to read as it comes; the caller
        calls its ``release`` (which parks or closes the connection)."""
        key, data = self._request(method, url, headers, body)
        conn = await self._exchange(method, key, data, True)
        return H1Stream(conn, self._release)

    @asynccontextmanager
    async def stream(self, method: str, url: str, headers: Mapping[str, str],
                     body: bytes | None = None) -> AsyncIterator[H1Stream]:
        answer = await self.start(method, url, headers, body)
        try:
            yield answer
        finally:
            answer.release()

    async def _exchange(self, method: str, key: Key, data: bytes, stream: bool) -> Connection:
        """A connection with ``data`` sent on it and its answer (a stream's head) read;
        the caller releases it."""
        for attempt in (0, 1):
            conn, reused = await self._acquire(key)
            try:
                conn.send(data, stream)
                while not (conn.done or stream and conn.head_done):
                    await conn.wait()
                return conn
            except H1Error as exc:
                self._release(conn)
                if exc.kind == "closed" and reused and not conn.got_bytes \
                        and attempt == 0 and method in _IDEMPOTENT:
                    continue  # the server had dropped it: once more, on a fresh one
                raise
            except BaseException:
                self._release(conn)
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _acquire(self, key: Key) -> tuple[Connection, bool]:
        if self._busy >= _LIMIT or self._waiters:
            try:
                async with asyncio.timeout(self.timeout):
                    await self._slot()
            except TimeoutError:
                raise H1Error("connect_timeout", "") from None
        self._busy += 1
        idle = self._idle.get(key)
        now = self.loop.time()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < _IDLE_S:
                return conn, True
            conn.close()
        try:
            return await self._connect(key), False
        except BaseException:
            self._busy -= 1
            self._wake_one()
            raise

    async def _connect(self, key: Key) -> Connection:
        try:
            async with asyncio.timeout(self.timeout):
                _, conn = await self.loop.create_connection(lambda: Connection(self, key), *key)
        except TimeoutError:
            raise H1Error("connect_timeout", "") from None
        except OSError as exc:
            raise H1Error("connect", str(exc) or type(exc).__name__) from None
        return conn

    async def _slot(self) -> None:
        while self._busy >= _LIMIT:
            waiter = self.loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # woken, then cancelled: pass the free slot on
                else:
                    self._waiters.remove(waiter)
                raise

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _release(self, conn: Connection) -> None:
        self._busy -= 1
        if self._waiters:
            self._wake_one()
        if conn.stream and conn.head_done and not conn.done and conn.error is None \
                and not conn.closed and not conn.paused:
            # A stream left after its last event (OpenAI's [DONE]) usually has only the
            # body's end still to come: read it in the background, then pool the connection.
            conn.draining = True
            conn.chunks, conn.buffered = [], 0
            return
        self.park(conn)

    def park(self, conn: Connection) -> None:
        """Pool ``conn`` when its answer was read to the end and it may be kept; else close."""
        reusable = conn.done and conn.keep and conn.error is None and not conn.closed
        conn.finish()
        if not reusable:
            if not conn.closed:
                conn.close()
            return
        now = conn.idle_since = self.loop.time()
        idle = self._idle.get(conn.key)
        if idle is None:
            idle = self._idle[conn.key] = deque()
        idle.append(conn)
        while idle[0].closed or now - idle[0].idle_since >= _IDLE_S:
            idle.popleft().close()

    async def aclose(self) -> None:
        self.forget()
        await asyncio.sleep(0)  # the transports' own close callbacks close the sockets

    def forget(self) -> None:
        """Close every connection now (also from outside the loop, or after it closed)."""
        self._idle.clear()
        for conn in list(self.conns):
            conn.closed = True
            if not self.loop.is_closed():
                conn.transport.close()
                continue
            # A closed loop runs no callbacks: close the socket ourselves, which is what
            # the transport would have done, so it is not reported as leaked.
            sock = getattr(conn.transport, "_sock", None)
            if sock is not None:
                sock.close()
                conn.transport._sock = None  # type: ignore[attr-defined]
        self.conns.clear()
