"""Every way a request can fail without a usable HTTP answer, as one typed error, for
every client (the lean HTTP/1.1 client, aiohttp, httpx): each client's exception is first
named by kind, then worded once here.
"""

from __future__ import annotations

from typing import Literal

import aiohttp
import httpx

from chorus.core.errors import (
    BadRequestError,
    MalformedResponse,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeout,
)
from chorus.http._h1 import H1Error

__all__ = ["Failure", "failure_of", "transport_error"]

#: connect_timeout, read_timeout, write_timeout, pool_timeout: no answer in time;
#: connect: the server cannot be reached; header: the request cannot be sent as given;
#: malformed: the answer is not valid HTTP; dropped: the connection ended mid-exchange.
Failure = Literal["connect_timeout", "read_timeout", "write_timeout", "pool_timeout",
                  "connect", "header", "malformed", "dropped"]

_KINDS = frozenset({"connect_timeout", "read_timeout", "write_timeout", "pool_timeout",
                    "connect", "header", "malformed", "dropped"})
_PHASE = {"connect_timeout": "connecting to", "read_timeout": "waiting for",
          "write_timeout": "sending to", "pool_timeout": "waiting for a connection to"}
_H1_KINDS: dict[str, Failure] = {"connect_timeout": "connect_timeout",
                                 "read_timeout": "read_timeout", "connect": "connect",
                                 "header": "header", "malformed": "malformed"}


def failure_of(exc: httpx.TransportError | aiohttp.ClientError | H1Error | Exception
               ) -> Failure:
    """What kind of failure a client's exception stands for."""
    kind = getattr(exc, "kind", None)
    if type(exc).__name__ == "TransportFailure" and kind in _KINDS:
        return kind  # type: ignore[no-any-return]
    if isinstance(exc, H1Error):
        return _H1_KINDS.get(exc.kind, "dropped")
    if isinstance(exc, httpx.TimeoutException):
        return {httpx.ConnectTimeout: "connect_timeout", httpx.WriteTimeout: "write_timeout",
                httpx.PoolTimeout: "pool_timeout"}.get(type(exc), "read_timeout")  # type: ignore[return-value]
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return "connect_timeout" if isinstance(exc, aiohttp.ConnectionTimeoutError) \
            else "read_timeout"
    if isinstance(exc, httpx.ConnectError | httpx.UnsupportedProtocol | httpx.ProxyError
                  | aiohttp.ClientConnectorError | aiohttp.InvalidURL
                  | aiohttp.NonHttpUrlClientError):
        return "connect"
    if isinstance(exc, httpx.RemoteProtocolError) and "disconnect" not in str(exc).lower():
        return "malformed"
    if isinstance(exc, aiohttp.ClientResponseError):
        return "malformed"  # raised for answers that are not valid HTTP
    return "dropped"


def transport_error(exc: httpx.TransportError | aiohttp.ClientError | H1Error | Exception, *,
                    model: str, url: str, timeout: float | None) -> ProviderError:
    """The typed error for a request that got no (usable) HTTP answer."""
    kind = failure_of(exc)
    detail = " ".join(str(exc).split())[:120] or type(exc).__name__
    if kind in _PHASE:
        limit = f" {timeout:g}s" if timeout is not None else ""
        return ProviderTimeout(f"timed out after{limit} {_PHASE[kind]} {url}; raise "
                               "`timeout:` or check the server", model=model)
    if kind == "connect":
        return ProviderConnectionError(
            f"cannot connect to {url} ({detail}); the server may not be running, or "
            "`base_url` is wrong", model=model)
    if kind == "header":
        return BadRequestError(f"cannot send the request to {url}: {detail}; fix `headers:`",
                               model=model)
    if kind == "malformed":
        return MalformedResponse(f"{url} did not answer with valid HTTP ({detail}); "
                                 "check `base_url`", model=model)
    return ProviderConnectionError(
        f"connection to {url} failed ({detail}); the server may have stopped", model=model)
