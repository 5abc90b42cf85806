"""What the gateway's ASGI endpoints share: reading a JSON body within its deadline,
answering an error in OpenAI's shape, the ``chorus`` block and headers of an answer, and
the base class that does auth, errors and metrics around each endpoint's ``handle``."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pydantic import ValidationError

from chorus.core import instrument
from chorus.core.context import scope as chorus_scope
from chorus.core.errors import ChorusError, DeadlineExceeded
from chorus.core.model import Model, call
from chorus.core.types import Completion, Request, Span
from chorus.gateway._json import dumps
from chorus.gateway.auth import KeyInfo
from chorus.gateway.metrics import Metrics
from chorus.gateway.openai_wire import (
    WireError,
    decision_summary,
    error_response,
    internal_error,
    models_answered,
    validation_error,
)
from chorus.gateway.service import WRAPPER_PREFIX, Gateway

__all__ = ["ClientGone"]

log = logging.getLogger("chorus.gateway")
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
_JSON = [(b"content-type", b"application/json")]
_SSE = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"),
        (b"x-accel-buffering", b"no")]
_MAX_BODY = 32 * 1024 * 1024
# Completion ids need to be unique, not secret: a seeded PRNG spares uuid4's
# os.urandom call on every request.
_ids = random.Random()


def stream_failure(exc: Exception, endpoint: str, system: str, timeout: float | None
                   ) -> WireError:
    """The error a stream that ``exc`` stopped ends with: past the endpoint's deadline, a
    chorus error as it is, anything else a typed internal error, its traceback logged (the
    details stay in the log, never in the answer)."""
    if isinstance(exc, TimeoutError):
        within = "its deadline" if timeout is None else f"{timeout:g}s"
        return error_response(DeadlineExceeded(f"{system!r} did not finish within {within}"))
    if isinstance(exc, ChorusError):
        return error_response(exc)
    log.error("%s %s: unexpected error in the stream", endpoint, system, exc_info=exc)
    return internal_error(exc, system)


def _completion_id() -> str:
    return f"chatcmpl-{_ids.getrandbits(128):032x}"


def _ascii(value: str) -> bytes:
    return value.encode("ascii", "replace")


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope["headers"]:
        if k == name:
            return str(v.decode("latin-1"))
    return None


class ClientGone(Exception):
    """The client disconnected before its request body was read."""


#: A request still unanswered this long after its body was read is watched for its
#: client leaving (a quick answer never pays for the watch: see ``_Watch``).
WATCH_AFTER_S = 0.05


class _Watch:
    """The request's ``receive`` and ``send``, watched: from ``WATCH_AFTER_S`` after the
    body was read until the response is complete, a task waits for the client to
    disconnect and then cancels the task answering it, so that the system stops working
    for nobody (a local model stops generating, an upstream call is closed). ``gone``
    says it did. A client that leaves sooner is seen when the watch starts. The delay
    spares the many quick answers a task and a wake-up each (a 17 % cost in requests per
    second on the gateway benchmark when every request was watched)."""

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive, self._send = receive, send
        self._task = asyncio.current_task()
        self._timer: asyncio.TimerHandle | None = None
        self._watcher: asyncio.Task[None] | None = None
        self.done = False
        self.gone = False

    async def receive(self) -> dict[str, Any]:
        msg = await self._receive()
        if (msg["type"] == "http.request" and not msg.get("more_body", False)
                and self._timer is None):
            self._timer = asyncio.get_running_loop().call_later(WATCH_AFTER_S, self._start)
        return msg

    async def send(self, msg: dict[str, Any]) -> None:
        if msg["type"] == "http.response.body" and not msg.get("more_body", False):
            self.done = True
        await self._send(msg)

    def _start(self) -> None:
        if not self.done and self._watcher is None:
            self._watcher = asyncio.create_task(self._wait_for_disconnect())

    async def _wait_for_disconnect(self) -> None:
        while not self.done:
            msg = await self._receive()
            # The server says "disconnect" too once the response is complete: only a
            # disconnect before that is the client leaving.
            if msg["type"] == "http.disconnect":
                if not self.done and self._task is not None:
                    self.gone = True
                    self._task.cancel()
                return

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._watcher is not None:
            self._watcher.cancel()


def _is_json(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/")
                                           and kind.endswith("+json"))


async def _body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise ClientGone
        chunk = msg.get("body", b"")
        size += len(chunk)
        if size > _MAX_BODY:
            raise WireError(413, "request body too large", code="body_too_large")
        parts.append(chunk)
        if not msg.get("more_body", False):
            return b"".join(parts)


async def _send(send: Send, status: int, body: bytes,
                headers: list[tuple[bytes, bytes]] = _JSON) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _answer(model: Model, request: Request, timeout: float | None) -> Completion:
    """``model``'s answer, in a context of its own with the request's deadline."""
    with chorus_scope(deadline_s=timeout):
        return await call(model, request)


def _root(span: Span | None) -> Span | None:
    """The system's own span: below the gateway's per-key wrappers."""
    while span is not None and span.name.startswith(WRAPPER_PREFIX) and span.children:
        span = span.children[0]
    return span


def _join_trace(scope: Scope) -> Callable[[], None] | None:
    """Make the caller's trace (its W3C ``traceparent`` header) the current one; returns
    what undoes that, or None when the request came without one."""
    if not any(k == b"traceparent" for k, _ in scope["headers"]):
        return None
    from chorus.telemetry.propagation import join

    return join({k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]})


def _wants_trace(scope: Scope, body: Any) -> bool:
    opts = getattr(body, "chorus", None)
    if opts is not None and opts.trace:
        return True
    return (_header(scope, b"x-chorus-trace") or "").lower() in ("1", "true", "yes")


def _chorus(system: str, answer: Completion, overhead_ms: float, trace: bool
            ) -> dict[str, Any]:
    out: dict[str, Any] = {
        "system": system, "model": answer.model,
        "models": models_answered(answer.trace, answer.model),
        "decision": decision_summary(_root(answer.trace)),
        "cost_usd": answer.cost_usd, "latency_s": round(answer.latency_s, 6),
        "overhead_ms": round(overhead_ms, 3),
    }
    if trace and answer.trace is not None:
        out["trace"] = answer.trace.to_dict()
    return out


def _chorus_headers(info: Mapping[str, Any]) -> list[tuple[bytes, bytes]]:
    return [(b"x-chorus-system", _ascii(info["system"])),
            (b"x-chorus-model", _ascii(info["model"])),
            (b"x-chorus-models", _ascii(",".join(info["models"]))),
            (b"x-chorus-cost-usd", f"{info['cost_usd']:.8f}".encode()),
            (b"x-chorus-latency-s", f"{info['latency_s']:.4f}".encode()),
            (b"x-chorus-overhead-ms", f"{info['overhead_ms']:.3f}".encode()),
            (b"x-chorus-decision", _ascii(info["decision"]))]


class _Endpoint:
    """Shared by the ASGI endpoints: auth, errors, metrics."""

    def __init__(self, gw: Gateway, metrics: Metrics, name: str) -> None:
        self.gw, self.metrics, self.name = gw, metrics, name
        self.timeout = gw.settings.timeout_s
        #: How long a client may take to send its body (a slow client holds a connection;
        #: under ``chorus serve`` the protocol closes it a moment later, gateway/_uvicorn.py).
        self.body_timeout = gw.settings.body_limit_s
        self.log_content = gw.settings.log_content

    async def _error(self, send: Send, err: WireError, system: str, started: float) -> None:
        headers = [*_JSON, *((k.encode(), v.encode()) for k, v in err.headers.items())]
        await _send(send, err.status, dumps(err.body()), headers)
        self.metrics.error(system, err.code or err.type)
        self.metrics.record(self.name, system, "", err.status, time.perf_counter() - started)
        if log.isEnabledFor(logging.INFO):
            log.info("%s %s -> %d %s", self.name, system or "-", err.status,
                     err.code or err.type)

    async def _parse(self, receive: Receive, cls: type[Any], scope: Scope) -> Any:
        kind = _header(scope, b"content-type")
        if kind is not None and not _is_json(kind):
            raise WireError(415, f"content-type {kind.split(';')[0].strip()!r}: send the "
                            "body as application/json", code="unsupported_media_type")
        try:
            async with asyncio.timeout(self.body_timeout):
                raw = await _body(receive)
        except TimeoutError:
            raise WireError(408, f"the request body did not arrive within "
                            f"{self.body_timeout:g}s", code="request_timeout") from None
        try:
            # Parsed and validated in one pass, without a dict of the body in between.
            return cls.model_validate_json(raw)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            if first["type"] == "json_invalid":
                raise WireError(400, "the body is not valid JSON", code="invalid_json") from None
            if first["type"] == "model_type" and not first["loc"]:
                raise WireError(400, "the body must be a JSON object",
                                code="invalid_json") from None
            raise validation_error(exc) from None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        state = {"system": ""}
        # With telemetry on, the request's spans continue the caller's trace (traceparent).
        joined = None if instrument.active() is None else _join_trace(scope)
        watch = _Watch(receive, send)
        try:
            key = self.gw.keys.check(_header(scope, b"authorization"))
            await self.handle(scope, watch.receive, watch.send, key, started, state)
        except asyncio.CancelledError:
            if not watch.gone:
                raise
        except ClientGone:
            # Nobody to answer: a note, not an error with a traceback.
            log.info("%s %s: the client disconnected before its request was read",
                     self.name, state["system"] or "-")
            self.metrics.error(state["system"], "client_disconnected")
        except WireError as err:
            await self._error(watch.send, err, state["system"], started)
        except ChorusError as exc:
            await self._error(watch.send, error_response(exc), state["system"], started)
        except Exception as exc:  # the last resort: a typed 500, logged
            log.exception("%s %s: unexpected error", self.name, state["system"] or "-")
            await self._error(watch.send, internal_error(exc, state["system"]), state["system"],
                              started)
        finally:
            watch.stop()
            if watch.gone:  # the watch cancelled this task: that cancel is spent
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
                log.info("%s: the client disconnected while %r was answering; stopped it",
                         self.name, state["system"] or "-")
                self.metrics.error(state["system"], "client_disconnected")
            if joined is not None:
                joined()

    async def handle(self, scope: Scope, receive: Receive, send: Send, key: KeyInfo,
                     started: float, state: dict[str, str]) -> None:
        raise NotImplementedError
