"""The aiohttp side of the HTTP providers: the pooled session https (and any request
while a proxy is set in the environment) goes through, about four times cheaper per
request than httpx's; its transport failures mapped onto the typed error tree, and a
stream split into lines. Plain http:// goes through the leaner http/_h1.py.

httpx stays for clients given an explicit ``transport`` (tests use ``httpx.MockTransport``).
"""

from __future__ import annotations

import codecs
import os
from collections.abc import AsyncIterator

import aiohttp

__all__ = ["forget", "iter_lines", "new_session", "proxies_set"]

_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "ws_proxy", "wss_proxy")


def proxies_set() -> bool:
    """Whether a proxy is set in the environment (any of the variables, any case)."""
    return any(os.environ.get(v) or os.environ.get(v.upper()) for v in _PROXY_VARS)


def new_session(timeout: float) -> aiohttp.ClientSession:
    """A keep-alive session; ``timeout`` bounds getting a connection and each read, like
    ``httpx.Timeout(timeout)`` did (no limit on the whole answer: streams may be long)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=256, ttl_dns_cache=300),
        timeout=aiohttp.ClientTimeout(total=None, connect=timeout, sock_read=timeout),
        # Like httpx, proxies from HTTP(S)_PROXY / NO_PROXY; but only when one is set,
        # because aiohttp's trust_env also reads ~/.netrc in a thread on every request
        # (a third of the gateway's time per request, measured with py-spy).
        trust_env=proxies_set(),
    )


def forget(session: aiohttp.ClientSession) -> None:
    """Drop a session that cannot be awaited closed (its loop is gone, or its owner was
    collected): close its sockets now if the loop still runs, and mark it closed so
    aiohttp does not report it as leaked."""
    connector = session.connector
    session.detach()
    if connector is not None and not connector.closed:
        # The synchronous half of ``await connector.close()``; it does nothing on a
        # closed loop, whose sockets went with it.
        connector._close()


async def iter_lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[str]:
    """The lines of a body (given as the chunks that arrive) as they arrive, without their
    endings (any length: aiohttp's own readline refuses lines over 128 KiB)."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    pending = ""
    async for chunk in chunks:
        pending += decoder.decode(chunk)
        if "\n" not in pending:
            continue
        *lines, pending = pending.split("\n")
        for line in lines:
            yield line.rstrip("\r")
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending.rstrip("\r")
