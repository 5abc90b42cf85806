"""uvicorn's httptools protocol with what the gateway needs of it: limits on how long a
client may take to send a request, and each answer sent in one write.

**Read limits.** uvicorn has none for a request in progress: a client that sends half a
head (or nothing at all, or a body a byte at a time) holds its connection, and its slot
among the open connections, for as long as it likes. Here the head must arrive within
``head_timeout_s`` of the connection or of the request's first byte, and the body within
``body_timeout_s`` of the head's end; past either, a 408 in OpenAI's error shape goes
out and the connection is closed (one that sent nothing is closed silently). The
gateway's endpoints time the body themselves and answer their own 408 (counted in
/metrics as an error); this protocol's body limit, a moment later, is the backstop for
every other route and closes the connection of a body still coming. The protocol's own
408s are counted in /metrics too, as ``chorus_gateway_read_timeouts_total{stage}``.

**One write.** uvicorn writes a response's head as soon as the app sends
``http.response.start`` and its body on the next message: two syscalls and two TCP
segments for every small JSON answer, and a client that may wake up twice. Here a write
waits for the next one, and the two go out together, at once; a write that no other
follows in the same turn of the loop goes out when the loop is free (a stream's events,
or a head whose body is not ready yet).

Both lean on internals of uvicorn (the parser callbacks, the request cycle's flags, the
keyword arguments uvicorn constructs a protocol with): uvicorn is pinned below the next
release and tests/gateway/test_uvicorn_pin.py fails on one outside the pin.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Literal

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from chorus.gateway.metrics import read_timeout
from chorus.gateway.wire_error import WireError

__all__ = ["BODY_GRACE_S", "GatewayHttpToolsProtocol"]

log = logging.getLogger("chorus.gateway")

#: How much longer than ``body_timeout_s`` the protocol waits before it cuts a body off
#: (the endpoints' own 408 comes first where they read the body).
BODY_GRACE_S = 1.0


class _Coalescing:
    """A transport that joins each write with the next one made in the same turn."""

    __slots__ = ("_transport", "_held", "_loop", "_scheduled")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport, self._loop = transport, loop
        self._held: bytes | None = None
        self._scheduled = False

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:
            self._held = data
            if not self._scheduled:
                self._scheduled = True
                self._loop.call_soon(self._flush)
            return
        # The body after its head: both now, before whatever the app does next.
        self._held = None
        self._transport.write(held + data)

    def _flush(self) -> None:
        self._scheduled = False
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        held, self._held = self._held, None
        if held is not None:  # what was written before the close still goes out
            self._transport.write(held)
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _timeout_answer(message: str) -> bytes:
    """The 408 the endpoints' own body timeout sends, as raw bytes of a closing answer."""
    body = json.dumps(WireError(408, message, code="request_timeout").body()).encode()
    return (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n"
            + body)


class GatewayHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn constructs it with keywords (config, server_state, app_state, _loop); the
    limits come in as keywords too (``functools.partial``, see gateway/server.py)."""

    def __init__(self, *args: Any, head_timeout_s: float = 10.0,
                 body_timeout_s: float = 15.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_s, self._body_s = head_timeout_s, body_timeout_s
        self._reading: asyncio.TimerHandle | None = None
        self._begun = False  # whether a byte of the request being read has come

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_Coalescing(transport, self.loop))  # type: ignore[arg-type]
        self._arm("head")  # a connection that never sends a byte is let go too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    # The parser's callbacks, in the order a request makes them.
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._begun = True
        if self._reading is None:  # the first byte of a request after a kept-alive one
            self._arm("head")

    def on_headers_complete(self) -> None:
        self._arm("body")  # replaces the head's timer; GETs complete at once, below
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._begun = False
        super().on_message_complete()

    def _arm(self, what: Literal["head", "body"]) -> None:
        self._disarm()
        seconds = self._head_s if what == "head" else self._body_s + BODY_GRACE_S
        self._reading = self.loop.call_later(seconds, self._too_slow, what)

    def _disarm(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
            self._reading = None

    def _too_slow(self, what: Literal["head", "body"]) -> None:
        self._reading = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if self.pipeline or (what == "head" and cycle is not None
                             and not cycle.response_complete):
            # An earlier request is still being answered, and uvicorn may have paused
            # reading until it is: the wait is the gateway's, not the client's.
            self._arm(what)
            return
        if what == "head" and not self._begun:
            # Not a byte of a request: nothing to answer, closed as an idle connection
            # is (an answer could cross a request a client sends just then).
            self.transport.close()
            return
        if what == "head":
            message = f"the request head did not arrive within {self._head_s:g}s"
        elif cycle.response_started:
            if cycle.response_complete:
                self.transport.close()  # answered already; what is still coming is not read
            else:
                # Answering already (the app did not wait for the body): the connection
                # ends with the answer, not before.
                cycle.keep_alive = False
            return
        else:
            message = f"the request body did not arrive within {self._body_s:g}s"
        log.info("%s:%s: %s; closing the connection", *(self.client or ("-", "-")), message)
        read_timeout(what)
        self.transport.write(_timeout_answer(message))
        self.transport.close()
