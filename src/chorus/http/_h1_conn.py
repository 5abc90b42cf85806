"""One HTTP/1.1 connection of the lean client (http/_h1.py) and the answer in flight
on it: an asyncio Protocol feeding httptools' response parser, with the read timeout,
flow control for streams, and the typed failure of an exchange that got no usable answer.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, cast

import httptools

if TYPE_CHECKING:
    from chorus.http._h1 import H1Pool

__all__ = ["Connection", "H1Error", "H1Response", "H1Stream", "Key"]

_HIGH_WATER = 1 << 20  # bytes a stream buffers ahead of its reader before reading pauses
Key = tuple[str, int]


class H1Error(Exception):
    """No usable answer. ``kind``: connect, connect_timeout, read_timeout, malformed,
    closed (the connection ended before the answer did), or header (one we cannot send)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


def _decode(data: bytes, encoding: str) -> bytes:
    """A body sent with ``content-encoding`` (we ask for none, but servers may send it)."""
    if encoding in ("", "identity"):
        return data
    try:
        if encoding in ("gzip", "x-gzip"):
            return zlib.decompress(data, 31)
        if encoding == "deflate":
            try:
                return zlib.decompress(data)
            except zlib.error:
                return zlib.decompress(data, -15)  # raw deflate, as some servers send it
    except zlib.error as exc:
        raise H1Error("malformed", f"bad {encoding} body: {exc}") from None
    raise H1Error("malformed", f"unsupported content-encoding {encoding!r}")


class H1Response:
    """A whole answer: status, headers and body."""

    __slots__ = ("status", "_raw_headers", "_raw")

    def __init__(self, status: int, raw_headers: list[tuple[bytes, bytes]], raw: bytes
                 ) -> None:
        self.status, self._raw_headers, self._raw = status, raw_headers, raw

    @property
    def headers(self) -> dict[str, str]:
        """Lower-case names (made on demand: only errors and streams need them)."""
        return _headers(self._raw_headers)

    @property
    def body(self) -> bytes:
        for name, value in self._raw_headers:
            if name.lower() == b"content-encoding":
                return _decode(self._raw, value.decode("latin-1").strip().lower())
        return self._raw


class Connection(asyncio.Protocol):
    """One connection, and the exchange in flight on it (one at a time)."""

    transport: asyncio.Transport

    def __init__(self, pool: H1Pool, key: Key) -> None:
        self.pool, self.key, self.loop = pool, key, pool.loop
        self.parser = httptools.HttpResponseParser(self)
        self.closed = self.busy = self.draining = False
        self.idle_since = 0.0
        self.waiter: asyncio.Future[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.begin(False)

    def begin(self, stream: bool) -> None:
        self.stream = stream
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_done = self.done = self.got_bytes = self.paused = False
        self.keep = True
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.error: H1Error | None = None

    # -- the protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.pool.conns.add(self)

    def data_received(self, data: bytes) -> None:
        if not self.busy or self.done:  # bytes nobody asked for: unusable from now on
            self.close()
            return
        self.got_bytes = True
        self.last_read = self.loop.time()
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self.fail("malformed", str(exc) or type(exc).__name__)
            self.close()
            return
        if self.draining:  # ``buffered`` now counts what was thrown away
            self.chunks = []
            if self.done:
                self.pool.park(self)
            elif self.buffered > 65536:  # not just the end: not worth waiting for
                self.close()
            return
        if self.done or (self.stream and self.head_done):
            self.wake()
            if self.buffered > _HIGH_WATER and not self.done:
                self.paused = True
                self.transport.pause_reading()

    def eof_received(self) -> bool:
        if self.busy and not self.done:
            if self.head_done and self._ends_with_close():
                self.done, self.keep = True, False
                self.wake()
            else:
                self.fail("closed", "the server closed the connection "
                          + ("mid-answer" if self.got_bytes else "before answering"))
        self.closed = True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.conns.discard(self)
        if self.busy and not self.done:
            self.fail("closed", str(exc) if exc else "the connection was closed mid-answer")
        if self.draining:  # nobody else will stop its timer
            self.finish()

    # -- httptools callbacks -----------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.head_done = True

    def _ends_with_close(self) -> bool:
        """Whether the body is delimited by the connection's end (no length, not chunked)."""
        framed = any(n.lower() in (b"content-length", b"transfer-encoding")
                     for n, _ in self.headers)
        return not framed and self.status not in (204, 304)

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)

    def on_message_complete(self) -> None:
        if self.status < 200:  # an interim answer (100 Continue): the real one follows
            self.head_done, self.headers = False, []
            return
        self.done = True
        self.keep = self.parser.should_keep_alive()

    # -- used by the pool ----------------------------------------------------------------

    def send(self, data: bytes, stream: bool) -> None:
        self.begin(stream)
        self.busy = True
        self.last_read = self.loop.time()
        self.transport.write(data)
        self.timer = self.loop.call_later(self.pool.timeout, self.on_timer)

    def on_timer(self) -> None:
        self.timer = None
        if not self.busy or self.done or self.error is not None:
            return
        idle = self.loop.time() - self.last_read
        if self.paused:  # our reader is the slow one
            idle = 0.0
        if idle >= self.pool.timeout * 0.999:
            self.fail("read_timeout", "")
            self.close()
        else:
            self.timer = self.loop.call_later(self.pool.timeout - idle, self.on_timer)

    def fail(self, kind: str, detail: str) -> None:
        if self.error is None and not self.done:
            self.error = H1Error(kind, detail)
            self.wake()

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        """Until the next bytes (a stream), the whole answer, or a failure."""
        if self.error is None:
            self.waiter = self.loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        if self.error is not None:
            raise self.error

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks, self.buffered = [], 0
        if self.paused:
            self.paused = False
            self.last_read = self.loop.time()
            self.transport.resume_reading()
        return data

    def finish(self) -> None:
        self.busy = self.draining = False
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def close(self) -> None:
        self.closed = True
        self.transport.close()


class H1Stream:
    """An answer whose body is read as it arrives."""

    def __init__(self, conn: Connection,
                 release: Callable[[Connection], None] | None = None) -> None:
        self._conn, self._release = conn, release
        self.status = conn.status
        self.headers = _headers(conn.headers)

    def release(self) -> None:
        """Give the connection back to its pool (parked if the answer was read to its
        end or nearly, else closed); once."""
        release, self._release = self._release, None
        if release is not None:
            release(self._conn)

    async def chunks(self) -> AsyncIterator[bytes]:
        conn = self._conn
        encoding = self.headers.get("content-encoding", "")
        if encoding not in ("", "identity"):  # rare: decode the whole body at the end
            parts: list[bytes] = []
            while not conn.done:
                if conn.chunks:
                    parts.append(conn.take())
                else:
                    await conn.wait()
            yield _decode(b"".join([*parts, conn.take()]), encoding)
            return
        while True:
            if conn.chunks:
                yield conn.take()
            elif conn.done:
                return
            else:
                await conn.wait()

    async def read(self) -> bytes:
        return b"".join([c async for c in self.chunks()])


def _headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw}
