"""uvicorn's httptools protocol, sending each answer in one write.

uvicorn writes a response's head as soon as the app sends ``http.response.start`` and its
body on the next message: two syscalls and two TCP segments for every small JSON answer,
and a client that may wake up twice. Here a write waits for the next one, and the two go
out together, at once; a write that no other follows in the same turn of the loop goes
out when the loop is free (a stream's events, or a head whose body is not ready yet).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["CoalescingHttpToolsProtocol"]


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


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_Coalescing(transport, self.loop))  # type: ignore[arg-type]
