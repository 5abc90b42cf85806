"""What the HTTP providers share: API keys, one lazily made pooled client, and turning
statuses, error bodies and transport failures into the typed error tree.

Plain ``http://`` requests go through a lean keep-alive client (http/_h1.py), the
cheapest per request on a gateway's hot path; https, and any request while a proxy is set
in the environment, through aiohttp (http/_aio.py). A client given an ``httpx``
transport (tests' mocks) uses httpx instead, through the same ``Endpoint`` methods and the
same error mapping.

The mapping functions are plain (no I/O) so they are tested without a server.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import httpx
from orjson import dumps as _dumps
from orjson import loads as _loads

from chorus.core import instrument
from chorus.core.errors import (
    AuthenticationError,
    BadRequestError,
    ContextLengthError,
    MalformedResponse,
    ModelNotFoundError,
    ProviderError,
    RateLimitError,
    ServerError,
)
from chorus.http._aio import forget, iter_lines, new_session, proxies_set
from chorus.http._failures import transport_error
from chorus.http._h1 import H1Error, H1Pool
from chorus.http._sse import ServerSentEvent, SSEDecoder
from chorus.http._transport import (
    AiohttpTransport,
    H1Transport,
    HttpRequest,
    HttpxTransport,
    Transport,
    TransportFailure,
)

__all__ = [
    "Endpoint",
    "HttpClient",
    "error_for_code",
    "error_for_status",
    "is_local",
    "one_line",
    "parse_retry_after",
    "key_usable",
    "resolve_api_key",
    "transport_error",
]

_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]", "0.0.0.0"})
_CONTEXT_MARKERS = (
    "context_length", "context length", "context window", "maximum context",
    "prompt is too long", "too many tokens", "reduce the length",
)
_BODY_LIMIT = 4000


def one_line(text: str, limit: int = 300) -> str:
    """``text`` squeezed to one line of at most ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def is_local(url: str) -> bool:
    """Whether ``url`` points at this machine (such servers need no API key)."""
    try:
        return httpx.URL(url).host in _LOCAL_HOSTS
    except httpx.InvalidURL:
        return False


def key_usable(literal: str | None, env_name: str | None, base_url: str, *,
               model: str) -> tuple[bool, str]:
    """``Provider.usable()`` for a keyed endpoint: whether a key can be found now."""
    try:
        resolve_api_key(literal, env_name, base_url, model=model)
    except AuthenticationError as exc:
        return False, str(exc)
    return True, "ok"


def resolve_api_key(literal: str | None, env_name: str | None, base_url: str, *,
                    model: str) -> str | None:
    """The API key to send, read now (not when the config was built) so a key
    exported later is seen. A local endpoint may go without one."""
    if literal:
        return literal
    value = os.environ.get(env_name) if env_name else None
    if value:
        return value
    if is_local(base_url):
        return None
    where = f"the environment variable {env_name}" if env_name else "`api_key:`"
    raise AuthenticationError(f"no API key for {base_url}: set {where}", model=model)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_detail(body: str) -> tuple[str, str | None]:
    """The message and code (or type) of an OpenAI- or Anthropic-style error body."""
    try:
        data = json.loads(body)
    except ValueError:
        return one_line(body) or "(empty body)", None
    err: Any = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(err, dict):
        message = err.get("message") or err.get("detail") or json.dumps(err)
        code = err.get("code") or err.get("type")
        return one_line(str(message)), str(code) if code else None
    if isinstance(err, str):
        return one_line(err), None
    return one_line(json.dumps(err)), None


def error_for_code(code: str | None, message: str, *, model: str, model_id: str,
                   url: str = "", status: int | None = None, body: str | None = None,
                   retry_after: float | None = None, auth_hint: str = "") -> ProviderError:
    """The typed error for an error code or type (as error bodies and stream error
    events carry it), falling back on the HTTP status when the code says nothing."""
    code = (code or "").lower()
    low = message.lower()
    kw: dict[str, Any] = {"model": model, "status_code": status, "body": body}
    at = f" at {url}" if url else ""
    tag = f" ({status})" if status else ""
    if code in ("model_not_found", "not_found_error") or status == 404:
        return ModelNotFoundError(
            f"model {model_id!r} not found{at}{tag}: {message}; check `model:` and `base_url`",
            **kw,
        )
    if code in ("authentication_error", "invalid_api_key") or status == 401:
        return AuthenticationError(f"authentication failed{at}{tag}: {message}; {auth_hint}"
                                   .rstrip("; "), **kw)
    if code == "permission_error" or status == 403:
        return AuthenticationError(
            f"access denied{at}{tag}: {message}; check the key's permissions for "
            f"{model_id!r}", **kw)
    if code in ("rate_limit_error", "rate_limit_exceeded") or status == 429:
        wait = f"; retry after {retry_after:g}s" if retry_after is not None else ""
        return RateLimitError(f"rate limited{tag}: {message}{wait}", retry_after=retry_after,
                              **kw)
    if code == "context_length_exceeded" or any(m in low for m in _CONTEXT_MARKERS):
        return ContextLengthError(
            f"the prompt does not fit the context window{tag}: {message}; shorten the "
            "messages or lower max_tokens", **kw)
    if code in ("overloaded_error", "api_error", "server_error") or (status or 0) >= 500:
        return ServerError(f"server error{at}{tag}: {message}; try again later", **kw)
    if code in ("invalid_request_error", "request_too_large") or (status or 0) >= 400:
        return BadRequestError(f"request rejected{tag}: {message}; fix the request", **kw)
    return ProviderError(f"error {code or 'unknown'}{tag}: {message}", **kw)


def error_for_status(status: int, body: str, headers: Mapping[str, str], *, model: str,
                     model_id: str, url: str, auth_hint: str = "") -> ProviderError:
    """The typed error for a non-2xx HTTP answer."""
    message, code = error_detail(body)
    retry = parse_retry_after(headers.get("retry-after")) if status == 429 else None
    return error_for_code(code, message, model=model, model_id=model_id, url=url,
                          status=status, body=body[:_BODY_LIMIT], retry_after=retry,
                          auth_hint=auth_hint)


def parse_json_body(body: str | bytes, *, model: str, url: str) -> Any:
    try:
        return _loads(body)
    except ValueError:
        text = body if isinstance(body, str) else body.decode("utf-8", "replace")
        raise MalformedResponse(f"{url} answered with something that is not JSON: "
                                f"{one_line(text, 80)!r}; check `base_url`",
                                model=model, body=text[:_BODY_LIMIT]) from None


#: What a transport raises for a request that got no usable answer.
_FAILURES = (H1Error, aiohttp.ClientError, httpx.TransportError, TransportFailure)


class HttpClient:
    """The transports of one model, made on first use in each event loop and closed by
    ``aclose``: the lean HTTP/1.1 one for http://, aiohttp for the rest, or the one given
    (a chorus ``Transport``, or an ``httpx`` transport)."""

    def __init__(self, *, timeout: float,
                 transport: Transport | httpx.AsyncBaseTransport | None = None) -> None:
        self.timeout = timeout
        self._given = transport if isinstance(transport, Transport) else None
        self._transport = transport if isinstance(transport, httpx.AsyncBaseTransport) \
            else None
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._h1: H1Pool | None = None

    def transport(self, url: str) -> Transport:
        """The transport that serves ``url``."""
        if self._given is not None:
            return self._given
        if self._transport is not None:
            return HttpxTransport(self.get())
        pool = self.h1(url)
        if pool is not None:
            return H1Transport(pool)
        return AiohttpTransport(self.session())

    def get(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            # A pooled connection belongs to the loop that opened it: a client made
            # under an earlier ``asyncio.run`` cannot be used (nor closed) from this one.
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(self.timeout),
                                             transport=self._transport)
            self._loop = loop
        return self._client

    def session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._session
        if session is None or self._session_loop is not loop or session.closed:
            if session is not None:
                forget(session)  # same reason as in ``get``
            session = self._session = new_session(self.timeout)
            self._session_loop = loop
        return session

    def h1(self, url: str) -> H1Pool | None:
        """The lean client's pool when it serves ``url`` (http://, no proxy set)."""
        pool = self._h1
        if pool is not None and pool.loop is asyncio.get_running_loop():
            return pool if url.startswith("http://") else None
        if not url.startswith("http://") or proxies_set():
            return None
        if pool is not None:
            pool.forget()  # same reason as in ``get``
        pool = self._h1 = H1Pool(self.timeout)
        return pool

    async def aclose(self) -> None:
        if self._given is not None:
            await self._given.aclose()
        pool, self._h1 = self._h1, None
        if pool is not None:
            if pool.loop is asyncio.get_running_loop():
                await pool.aclose()
            else:
                pool.forget()
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            await client.aclose()
        session, self._session = self._session, None
        if session is not None:
            if self._session_loop is asyncio.get_running_loop():
                await session.close()
            else:
                forget(session)

    def __del__(self) -> None:
        # Never closed (a model dropped without ``aclose``): release the sockets quietly,
        # as httpx did, instead of aiohttp's "Unclosed client session" report.
        session = getattr(self, "_session", None)
        if session is not None and not session.closed:
            forget(session)
        pool = getattr(self, "_h1", None)
        if pool is not None:
            pool.forget()


class Endpoint:
    """Sends requests to one base URL for one model, raising only the typed errors:
    every transport's answers and failures go through the same few lines here."""

    def __init__(self, http: HttpClient, *, model: str, model_id: str,
                 auth_hint: str = "") -> None:
        self.http, self.model, self.model_id, self.auth_hint = http, model, model_id, auth_hint

    def _status_error(self, status: int, body: bytes, headers: Mapping[str, str],
                      url: str) -> ProviderError:
        """The typed error for an HTTP error answer."""
        return error_for_status(status, body.decode("utf-8", "replace"), headers,
                                model=self.model, model_id=self.model_id, url=url,
                                auth_hint=self.auth_hint)

    def _failed(self, exc: BaseException, url: str) -> ProviderError:
        return transport_error(exc, model=self.model, url=url,  # type: ignore[arg-type]
                               timeout=self.http.timeout)

    async def request_json(self, method: str, url: str, *, headers: Mapping[str, str],
                           payload: Any = None) -> Any:
        data, sent = _encode(payload, _traced(headers))
        try:
            response = await self.http.transport(url).handle(
                HttpRequest(method, url, sent, data))
            try:
                body = await response.read()
            finally:
                await response.aclose()
        except _FAILURES as exc:
            raise self._failed(exc, url) from exc
        if response.status >= 400:
            raise self._status_error(response.status, body, response.headers, url)
        return parse_json_body(body, model=self.model, url=url)

    @asynccontextmanager
    async def stream(self, url: str, *, headers: Mapping[str, str],
                     payload: Any) -> AsyncIterator[AsyncIterator[ServerSentEvent]]:
        """POST ``payload`` and yield the answer's server-sent events."""
        data, sent = _encode(payload, _traced(headers))
        try:
            response = await self.http.transport(url).handle(
                HttpRequest("POST", url, sent, data, stream=True))
            try:
                if response.status >= 400:
                    raise self._status_error(response.status, await response.read(),
                                             response.headers, url)
                events = _sse(response.headers.get("content-type", ""), response.read,
                              response.chunks())
                try:
                    yield events
                finally:
                    await events.aclose()
            finally:
                await response.aclose()
        except _FAILURES as exc:
            raise self._failed(exc, url) from exc


async def _sse(ctype: str, read: Callable[[], Awaitable[bytes]], chunks: AsyncIterator[bytes]
               ) -> AsyncGenerator[ServerSentEvent, None]:
    """The events of a streamed answer, from its content type and body."""
    if "json" in ctype and "event-stream" not in ctype:
        # Some servers answer a stream request with one JSON body (often an error).
        yield ServerSentEvent((await read()).decode("utf-8", "replace"), "json")
        return
    decoder = SSEDecoder()
    async for line in iter_lines(chunks):
        event = decoder.feed(line)
        if event is not None:
            yield event
    last = decoder.flush()
    if last is not None:
        yield last


def _traced(headers: Mapping[str, str]) -> Mapping[str, str]:
    """``headers`` plus the ``traceparent`` of the current call when telemetry is on, so
    the upstream's spans join the request's trace."""
    if instrument.active() is None:
        return headers
    out = dict(headers)
    instrument.outgoing_headers(out)
    return out


def _encode(payload: Any, headers: Mapping[str, str]) -> tuple[bytes | None, dict[str, str]]:
    """The JSON body and the headers to send with it."""
    if payload is None:
        return None, dict(headers)
    return _dumps(payload), {"Content-Type": "application/json", **headers}
