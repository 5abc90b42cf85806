"""The ASGI app: Starlette routes over a ``Gateway``.

The POST endpoints (chat completions, responses, completions, embeddings) are plain
ASGI callables: they
read the body and send the answer in one task, so the request's deadline scope covers
the whole stream, and a stream's headers go out only once its first piece exists.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from starlette import types
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request as HttpRequest
from starlette.responses import Response
from starlette.routing import Route

from chorus.core.compose import Relay, open_stream
from chorus.core.context import scope as chorus_scope
from chorus.core.model import Model
from chorus.core.types import Completion, Request, ToolCallDelta
from chorus.gateway import responses_api
from chorus.gateway._deadline import caller_deadline
from chorus.gateway._endpoint import (
    _JSON,
    _SSE,
    ClientGone,
    Receive,
    Scope,
    Send,
    _answer,
    _ascii,
    _chorus,
    _chorus_headers,
    _completion_id,
    _Endpoint,
    _header,
    _ids,
    _send,
    _wants_trace,
    stream_failure,
)
from chorus.gateway._json import dumps
from chorus.gateway.auth import KeyInfo
from chorus.gateway.metrics import Metrics
from chorus.gateway.openai_wire import (
    ChatRequest,
    EmbeddingsRequest,
    WireError,
    chat_body,
    chunk_body,
    internal_error,
    to_request,
)
from chorus.gateway.openapi import openapi_document
from chorus.gateway.responses_api import ResponsesRequest
from chorus.gateway.service import Gateway

__all__ = ["ClientGone", "create_app"]

log = logging.getLogger("chorus.gateway")


class ChatEndpoint(_Endpoint):
    async def handle(self, scope: Scope, receive: Receive, send: Send, key: KeyInfo,
                     started: float, state: dict[str, str]) -> None:
        body: ChatRequest = await self._parse(receive, ChatRequest, scope)
        model = self.gw.resolve(body.model, key)
        # Named in the metrics only once it is known: made-up names share one label.
        state["system"] = system = body.model
        request = to_request(body, self.gw.metadata_for(key))
        self.gw.check_accepts(system, model, request)
        if self.log_content:
            log.info("key %s asks %s: %r", key.name, system, request.prompt)
        timeout = caller_deadline(_header(scope, b"x-chorus-deadline-s"),
                                  _header(scope, b"x-stainless-read-timeout"),
                                  stream=bool(body.stream), limit=self.timeout)
        if body.stream:
            include = bool(body.stream_options and body.stream_options.include_usage)
            await self._stream(send, model, request, body, include, started, scope, timeout)
            return
        answer = await _answer(model, request, timeout)
        info = _chorus(system, answer, (time.perf_counter() - started - answer.latency_s)
                       * 1000, _wants_trace(scope, body))
        # `model` names the leaf that answered, as OpenAI's does; the system asked for
        # stays in `chorus.system` and x-chorus-system.
        out = chat_body(_completion_id(), int(time.time()), answer.model, answer, info)
        await _send(send, 200, dumps(out), [*_JSON, *_chorus_headers(info)])
        self._done(system, answer, started)

    def _done(self, system: str, answer: Completion, started: float) -> None:
        u = answer.usage
        self.metrics.record(self.name, system, answer.model, 200, time.perf_counter() - started,
                            u.input_tokens, u.output_tokens, answer.cost_usd)
        if self.log_content:
            log.info("%s answered (%s): %r", system, answer.model, answer.text)

    async def _stream(self, send: Send, model: Model, request: Any, body: ChatRequest,
                      include_usage: bool, started: float, scope: Scope,
                      timeout: float | None) -> None:
        system = body.model
        cid, created = _completion_id(), int(time.time())
        events = open_stream(model, request)
        relay = Relay(events, model)
        opened = False
        leaf = system  # each chunk names the leaf that produced it, once one says
        asked_logprobs, sent_logprobs = bool(body.logprobs), 0

        async def event(obj: Any, more: bool = True) -> None:
            await send({"type": "http.response.body", "body": b"data: " + dumps(obj) + b"\n\n",
                        "more_body": more})

        try:
            with chorus_scope(deadline_s=timeout):
                async with asyncio.timeout(timeout):
                    async for ev in relay:
                        logprobs = None
                        if isinstance(ev, ToolCallDelta):
                            call, text = ev, None
                        else:
                            call, text = None, ev.text
                            leaf = ev.model or leaf
                            if text and asked_logprobs and ev.logprobs:
                                # Each chunk with its own tokens' logprobs, as OpenAI's.
                                logprobs = ev.logprobs
                                sent_logprobs += len(logprobs)
                        if not opened:
                            # Headers only now: an error before the first piece is still
                            # an ordinary error response with its status code.
                            await send({"type": "http.response.start", "status": 200,
                                        "headers": [*_SSE,
                                                    (b"x-chorus-system", _ascii(system))]})
                            opened = True
                            await event(chunk_body(
                                cid, created, leaf, text=text, role=True, tool_call=call,
                                include_usage=include_usage, logprobs=logprobs))
                            continue
                        if call is not None or text:
                            await event(chunk_body(
                                cid, created, leaf, text=text, tool_call=call,
                                include_usage=include_usage, logprobs=logprobs))
            final = relay.final
        except Exception as exc:
            await self._stream_error(send, opened, stream_failure(exc, "chat", system, timeout),
                                     system, started)
            return
        finally:
            await events.aclose()
        info = _chorus(system, final, (time.perf_counter() - started - final.latency_s)
                       * 1000, _wants_trace(scope, body))
        if not opened:  # a model that streamed no text at all
            await send({"type": "http.response.start", "status": 200,
                        "headers": [*_SSE, (b"x-chorus-system", _ascii(system))]})
            await event(chunk_body(cid, created, final.model, text="", role=True,
                                   include_usage=include_usage))
        if final.logprobs is not None and len(final.logprobs) > sent_logprobs:
            # Those no piece carried (a source that gives them only with the whole answer,
            # a tool call's arguments): in one chunk before the finish.
            await event(chunk_body(cid, created, final.model,
                                   logprobs=final.logprobs[sent_logprobs:],
                                   include_usage=include_usage))
        await event(chunk_body(cid, created, final.model, finish=final.finish_reason or "stop",
                               include_usage=include_usage,
                               chorus=None if include_usage else info))
        if include_usage:
            await event(chunk_body(cid, created, final.model, usage=final.usage, chorus=info))
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n",
                    "more_body": False})
        self._done(system, final, started)

    async def _stream_error(self, send: Send, opened: bool, err: WireError, system: str,
                            started: float) -> None:
        if not opened:
            await self._error(send, err, system, started)
            return
        # Cut off after the first piece: say so, and never send [DONE].
        await send({"type": "http.response.body", "body": b"data: " + dumps(err.body())
                    + b"\n\n", "more_body": False})
        self.metrics.error(system, err.code or err.type)
        self.metrics.record(self.name, system, "", err.status, time.perf_counter() - started)


class ResponsesEndpoint(ChatEndpoint):
    """``POST /v1/responses``: the same systems, in the Responses API's shapes."""

    async def handle(self, scope: Scope, receive: Receive, send: Send, key: KeyInfo,
                     started: float, state: dict[str, str]) -> None:
        body: ResponsesRequest = await self._parse(receive, ResponsesRequest, scope)
        model = self.gw.resolve(body.model, key)
        state["system"] = system = body.model
        request = responses_api.to_request(body, self.gw.metadata_for(key))
        self.gw.check_accepts(system, model, request)
        if body.stream:
            await self._stream_events(send, model, request, body, started, scope)
            return
        answer = await _answer(model, request, self.timeout)
        info = _chorus(system, answer, (time.perf_counter() - started - answer.latency_s)
                       * 1000, _wants_trace(scope, body))
        out = responses_api.response_body(f"resp_{_ids.getrandbits(128):032x}", time.time(),
                                          body, answer, chorus=info)
        await _send(send, 200, dumps(out), [*_JSON, *_chorus_headers(info)])
        self._done(system, answer, started)

    async def _stream_events(self, send: Send, model: Model, request: Request,
                             body: ResponsesRequest, started: float, scope: Scope) -> None:
        system, state = body.model, responses_api.StreamState(body)
        events = open_stream(model, request)
        relay = Relay(events, model)
        opened = False

        async def emit(objs: list[dict[str, Any]], more: bool = True) -> None:
            data = b"".join(b"event: " + o["type"].encode() + b"\ndata: " + dumps(o) + b"\n\n"
                            for o in objs)
            await send({"type": "http.response.body", "body": data, "more_body": more})

        try:
            with chorus_scope(deadline_s=self.timeout):
                async with asyncio.timeout(self.timeout):
                    async for ev in relay:
                        if not opened:
                            await send({"type": "http.response.start", "status": 200,
                                        "headers": [*_SSE,
                                                    (b"x-chorus-system", _ascii(system))]})
                            opened = True
                            await emit(state.start())
                        if isinstance(ev, ToolCallDelta):
                            await emit(state.call_delta(ev))
                        elif ev.text:
                            await emit(state.text_delta(ev.text, ev.logprobs))
            final = relay.final
        except Exception as exc:
            err = stream_failure(exc, "responses", system, self.timeout)
            if not opened:
                await self._error(send, err, system, started)
                return
            await emit([state.event("error", code=err.code or err.type, message=err.message,
                                    param=err.param)], more=False)
            self.metrics.error(system, err.code or err.type)
            self.metrics.record(self.name, system, "", err.status,
                                time.perf_counter() - started)
            return
        finally:
            await events.aclose()
        info = _chorus(system, final, (time.perf_counter() - started - final.latency_s)
                       * 1000, _wants_trace(scope, body))
        if not opened:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [*_SSE, (b"x-chorus-system", _ascii(system))]})
            await emit(state.start())
        await emit(state.finish(final, info), more=False)
        self._done(system, final, started)


class EmbeddingsEndpoint(_Endpoint):
    async def handle(self, scope: Scope, receive: Receive, send: Send, key: KeyInfo,
                     started: float, state: dict[str, str]) -> None:
        body: EmbeddingsRequest = await self._parse(receive, EmbeddingsRequest, scope)
        texts = [body.input] if isinstance(body.input, str) else list(body.input)
        if not texts or any(not t for t in texts):
            raise WireError(400, "input: give one or more non-empty strings", param="input",
                            code="invalid_value")
        emb = self.gw.embedder(body.model)
        state["system"] = body.model
        vectors = await emb.embed(texts)
        if body.dimensions is not None and body.dimensions != vectors.shape[1]:
            raise WireError(400, f"dimensions: {body.model!r} gives {vectors.shape[1]}",
                            param="dimensions", code="invalid_value")
        data: list[dict[str, Any]] = []
        for i, row in enumerate(vectors):
            vec: Any = (base64.b64encode(row.astype("<f4").tobytes()).decode()
                        if body.encoding_format == "base64" else row.tolist())
            data.append({"object": "embedding", "index": i, "embedding": vec})
        tokens = sum(max(1, (len(t) + 3) // 4) for t in texts)
        out = {"object": "list", "data": data, "model": body.model,
               "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
        await _send(send, 200, dumps(out))
        self.metrics.record(self.name, body.model, body.model, 200,
                            time.perf_counter() - started, tokens)


class _App(Starlette):
    """Starlette, except that the POST endpoints (plain ASGI callables that answer their
    own errors) are reached with one dict lookup instead of the middleware stack and the
    route regexes."""

    hot: dict[str, _Endpoint]

    async def __call__(self, scope: types.Scope, receive: types.Receive,
                       send: types.Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self.hot.get(scope["path"])
            if endpoint is not None:
                await endpoint(cast(Scope, scope), cast(Receive, receive), cast(Send, send))
                return
        await super().__call__(scope, receive, send)


def create_app(gateway: Gateway) -> Starlette:
    """The ASGI app serving ``gateway``."""
    metrics = Metrics()
    doc = dumps(openapi_document([n for n, t, _ in gateway.listed(_OPEN) if t != "embedder"],
                                 secured=not gateway.keys.open))

    def _json(obj: Any, status: int = 200) -> Response:
        return Response(dumps(obj), status, media_type="application/json")

    def _key(request: HttpRequest) -> KeyInfo:
        return gateway.keys.check(request.headers.get("authorization"))

    def _entry(name: str, type_: str, kind: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": 0, "owned_by": "chorus",
                "chorus": {"type": type_, "kind": kind}}

    async def models(request: HttpRequest) -> Response:
        try:
            key = _key(request)
        except WireError as err:
            return _json(err.body(), err.status)
        return _json({"object": "list", "data": [_entry(*t) for t in gateway.listed(key)]})

    async def one_model(request: HttpRequest) -> Response:
        name = request.path_params["model"]
        try:
            key = _key(request)
            for entry in gateway.listed(key):
                if entry[0] == name:
                    return _json(_entry(*entry))
            gateway.resolve(name, key)  # raises 404 or 403
        except WireError as err:
            return _json(err.body(), err.status)
        raise AssertionError("unreachable")

    async def health(request: HttpRequest) -> Response:
        return _json({"status": "ok", "models": len(gateway.models)})

    async def metrics_text(request: HttpRequest) -> Response:
        # With keys configured, the counters (systems, keys' traffic) need a key too.
        try:
            _key(request)
        except WireError as err:
            return _json(err.body(), err.status)
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    async def openapi(request: HttpRequest) -> Response:
        return Response(doc, media_type="application/json")

    async def http_error(request: HttpRequest, exc: Exception) -> Response:
        if not isinstance(exc, HTTPException):  # the last resort: a typed 500, logged
            log.error("%s %s: unexpected error", request.method, request.url.path,
                      exc_info=exc)
            err = internal_error(exc)
            metrics.error("", err.code or err.type)
            return _json(err.body(), err.status)
        err = WireError(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}",
                        code="not_found" if exc.status_code == 404 else None)
        return _json(err.body(), exc.status_code)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await gateway.aclose()

    from chorus.gateway._completions import CompletionsEndpoint  # it builds on ChatEndpoint

    chat = ChatEndpoint(gateway, metrics, "chat")
    completions = CompletionsEndpoint(gateway, metrics, "completions")
    responses = ResponsesEndpoint(gateway, metrics, "responses")
    embeddings = EmbeddingsEndpoint(gateway, metrics, "embeddings")
    routes = [
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/v1/responses", responses, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/models/{model:path}", one_model, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics_text, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    app = _App(routes=routes,
               exception_handlers={HTTPException: http_error, Exception: http_error},
               lifespan=lifespan)
    app.hot = {"/v1/chat/completions": chat, "/v1/embeddings": embeddings,
               "/v1/responses": responses, "/v1/completions": completions}
    app.state.gateway = gateway
    app.state.metrics = metrics
    return app


_OPEN = KeyInfo("openapi")
