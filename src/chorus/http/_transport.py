"""One transport interface with one method, httpx's shape: ``handle(request) -> response``.

Every HTTP provider and embedder sends through ``Endpoint`` (``_client.py``), which asks
its ``HttpClient`` for the transport that serves a URL and does the rest once: encoding,
status and failure mapping, server-sent events. Three transports implement it:

- ``H1Transport``: the lean keep-alive HTTP/1.1 client (``_h1.py``) for plain http://,
  the cheapest per request on a gateway's hot path;
- ``AiohttpTransport``: https, and any request while a proxy is set;
- ``HttpxTransport``: any ``httpx`` transport (``httpx.MockTransport`` included).

``MockTransport`` is the public test double: it answers from a function, and everything
above it runs as it does against a server.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
from orjson import dumps

from chorus.http._failures import Failure
from chorus.http._h1 import H1Pool
from chorus.http._h1_conn import H1Response, H1Stream

__all__ = ["AiohttpTransport", "H1Transport", "HttpRequest", "HttpResponse",
           "HttpxTransport", "MockTransport", "Transport", "TransportFailure"]


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None = None
    #: The body will be read as it arrives (a stream): no whole-body fast path.
    stream: bool = False


class HttpResponse:
    """An answer whose head has arrived. Read the body whole (``read``) or as it arrives
    (``chunks``), then ``aclose`` it (which releases the connection). This base holds a
    body given whole or as pieces; the transports' responses read from the network."""

    def __init__(self, status: int, headers: Mapping[str, str] | None = None, *,
                 body: bytes = b"", json: Any = None, chunks: Iterable[bytes] = ()) -> None:
        self.status = status
        self._headers = {k.lower(): v for k, v in (headers or {}).items()}
        if json is not None:
            body = dumps(json)
            self._headers.setdefault("content-type", "application/json")
        self._body, self._pieces = body, list(chunks)

    @property
    def headers(self) -> Mapping[str, str]:
        """Lower-case names."""
        return self._headers

    async def read(self) -> bytes:
        return self._body + b"".join(self._pieces)

    async def chunks(self) -> AsyncIterator[bytes]:
        if self._body:
            yield self._body
        for piece in self._pieces:
            yield piece

    async def aclose(self) -> None:
        return None


class TransportFailure(Exception):
    """No usable answer, in words every transport shares (a ``MockTransport`` handler
    raises it to play a network failure): ``kind`` as in ``_failures.Failure``."""

    def __init__(self, kind: Failure, detail: str = "") -> None:
        super().__init__(detail)
        self.kind = kind


class Transport(ABC):
    """Sends one request and returns its answer once the head has arrived."""

    @abstractmethod
    async def handle(self, request: HttpRequest) -> HttpResponse:
        """The answer to ``request``. A failure raises the client's own exception (or
        ``TransportFailure``); ``Endpoint`` turns each into the typed error."""

    async def aclose(self) -> None:
        """Release pooled connections."""
        return None


# -- the lean HTTP/1.1 client -----------------------------------------------------------


class _H1Whole(HttpResponse):
    def __init__(self, answer: H1Response) -> None:
        self.status, self._answer = answer.status, answer

    @property
    def headers(self) -> Mapping[str, str]:
        return self._answer.headers  # built on demand: only errors and streams read them

    async def read(self) -> bytes:
        return self._answer.body

    async def chunks(self) -> AsyncIterator[bytes]:
        yield self._answer.body


class _H1Streamed(HttpResponse):
    def __init__(self, answer: H1Stream) -> None:
        self.status, self._answer = answer.status, answer

    @property
    def headers(self) -> Mapping[str, str]:
        return self._answer.headers

    async def read(self) -> bytes:
        return await self._answer.read()

    def chunks(self) -> AsyncIterator[bytes]:
        return self._answer.chunks()

    async def aclose(self) -> None:
        self._answer.release()


class H1Transport(Transport):
    def __init__(self, pool: H1Pool) -> None:
        self.pool = pool

    async def handle(self, request: HttpRequest) -> HttpResponse:
        if request.stream:
            return _H1Streamed(await self.pool.start(request.method, request.url,
                                                     request.headers, request.body))
        return _H1Whole(await self.pool.fetch(request.method, request.url, request.headers,
                                              request.body))

    async def aclose(self) -> None:
        await self.pool.aclose()


# -- aiohttp ----------------------------------------------------------------------------


class _AiohttpResponse(HttpResponse):
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.status, self._response = response.status, response

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    async def read(self) -> bytes:
        return await self._response.read()

    def chunks(self) -> AsyncIterator[bytes]:
        return self._response.content.iter_any()

    async def aclose(self) -> None:
        self._response.release()


class AiohttpTransport(Transport):
    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def handle(self, request: HttpRequest) -> HttpResponse:
        response = await self.session.request(request.method, request.url,
                                              headers=request.headers, data=request.body)
        return _AiohttpResponse(response)

    async def aclose(self) -> None:
        await self.session.close()


# -- httpx ------------------------------------------------------------------------------


class _HttpxResponse(HttpResponse):
    def __init__(self, response: httpx.Response) -> None:
        self.status, self._response = response.status_code, response

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    async def read(self) -> bytes:
        return await self._response.aread()

    def chunks(self) -> AsyncIterator[bytes]:
        return self._response.aiter_bytes()

    async def aclose(self) -> None:
        await self._response.aclose()


class HttpxTransport(Transport):
    """Any httpx transport (a real one, or ``httpx.MockTransport`` in tests)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def handle(self, request: HttpRequest) -> HttpResponse:
        built = self.client.build_request(request.method, request.url,
                                          headers=dict(request.headers), content=request.body)
        return _HttpxResponse(await self.client.send(built, stream=True))

    async def aclose(self) -> None:
        await self.client.aclose()


# -- the test double --------------------------------------------------------------------


Handler = Callable[[HttpRequest], "HttpResponse | Awaitable[HttpResponse]"]


class MockTransport(Transport):
    """Answers every request with ``handler(request)`` (sync or async), for tests:

        def handler(request):
            return HttpResponse(200, json={"choices": [...]})

        model = OpenAIModel("m", base_url="http://test/v1", transport=MockTransport(handler))

    A handler raises ``TransportFailure("connect", "refused")`` to play a network
    failure. ``requests`` keeps every request seen."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[HttpRequest] = []

    async def handle(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        answer = self.handler(request)
        if inspect.isawaitable(answer):
            answer = await answer
        assert isinstance(answer, HttpResponse)
        return answer
