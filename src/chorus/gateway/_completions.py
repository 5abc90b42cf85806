"""``POST /v1/completions``: the legacy Completions API over the same systems.

Several prompts are answered side by side (one call each) when not streamed, and one
after the other when streamed (each chunk names its choice's index).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from chorus.core.compose import Relay, open_stream
from chorus.core.context import scope as chorus_scope
from chorus.core.model import Model
from chorus.core.types import Completion, Request, TextDelta, Usage
from chorus.gateway._deadline import caller_deadline
from chorus.gateway._endpoint import (
    _JSON,
    _SSE,
    Receive,
    Scope,
    Send,
    _answer,
    _ascii,
    _chorus,
    _chorus_headers,
    _header,
    _ids,
    _send,
    _wants_trace,
    stream_failure,
)
from chorus.gateway._json import dumps
from chorus.gateway.app import ChatEndpoint
from chorus.gateway.auth import KeyInfo
from chorus.gateway.completions_api import (
    CompletionsRequest,
    answer_choice,
    choice_body,
    completion_body,
    legacy_logprobs,
    to_requests,
)
from chorus.gateway.openai_wire import models_answered

__all__ = ["CompletionsEndpoint"]

log = logging.getLogger("chorus.gateway")


def _cmpl_id() -> str:
    return f"cmpl-{_ids.getrandbits(128):032x}"


def _merged(answers: list[Completion]) -> Completion:
    """One Completion standing for several answers: their usage and cost together."""
    if len(answers) == 1:
        return answers[0]
    return Completion("", answers[0].model, Usage.total(a.usage for a in answers),
                      sum(a.cost_usd for a in answers), max(a.latency_s for a in answers))


def _info(system: str, answers: list[Completion], started: float, trace: bool
          ) -> dict[str, Any]:
    merged = _merged(answers)
    info = _chorus(system, merged, (time.perf_counter() - started - merged.latency_s) * 1000,
                   trace)
    if len(answers) > 1:
        info["models"] = list(dict.fromkeys(
            m for a in answers for m in models_answered(a.trace, a.model)))
        if trace:
            info["traces"] = [a.trace.to_dict() if a.trace else None for a in answers]
    return info


class CompletionsEndpoint(ChatEndpoint):
    async def handle(self, scope: Scope, receive: Receive, send: Send, key: KeyInfo,
                     started: float, state: dict[str, str]) -> None:
        body: CompletionsRequest = await self._parse(receive, CompletionsRequest, scope)
        model = self.gw.resolve(body.model, key)
        state["system"] = system = body.model
        requests = to_requests(body, self.gw.metadata_for(key))
        self.gw.check_accepts(system, model, requests[0])
        timeout = caller_deadline(_header(scope, b"x-chorus-deadline-s"),
                                  _header(scope, b"x-stainless-read-timeout"),
                                  stream=bool(body.stream), limit=self.timeout)
        if body.stream:
            await self._stream_prompts(send, model, requests, body, started, scope, timeout)
            return
        if len(requests) == 1:
            answers = [await _answer(model, requests[0], timeout)]
        else:
            answers = list(await asyncio.gather(*(_answer(model, r, timeout)
                                                  for r in requests)))
        info = _info(system, answers, started, _wants_trace(scope, body))
        echo = bool(body.echo)
        choices = [answer_choice(i, r.messages[-1].content, a, echo)
                   for i, (r, a) in enumerate(zip(requests, answers, strict=True))]
        merged = _merged(answers)
        out = completion_body(_cmpl_id(), int(time.time()), merged.model, choices,
                              merged.usage, info)
        await _send(send, 200, dumps(out), [*_JSON, *_chorus_headers(info)])
        self._done(system, merged, started)

    async def _stream_prompts(self, send: Send, model: Model, requests: list[Request],
                              body: CompletionsRequest, started: float, scope: Scope,
                              timeout: float | None) -> None:
        system = body.model
        cid, created = _cmpl_id(), int(time.time())
        include = bool(body.stream_options and body.stream_options.include_usage)
        opened = False
        leaf = system
        answers: list[Completion] = []

        async def chunk(index: int, text: str, finish: str | None = None,
                        logprobs: dict[str, Any] | None = None) -> None:
            nonlocal opened
            if not opened:
                # Headers only now: an error before the first piece is still an ordinary
                # error response with its status code.
                await send({"type": "http.response.start", "status": 200,
                            "headers": [*_SSE, (b"x-chorus-system", _ascii(system))]})
                opened = True
            obj = completion_body(cid, created, leaf, [choice_body(
                index, text, finish=finish, logprobs=logprobs)], None, include_usage=include)
            await send({"type": "http.response.body",
                        "body": b"data: " + dumps(obj) + b"\n\n", "more_body": True})

        try:
            with chorus_scope(deadline_s=timeout):
                async with asyncio.timeout(timeout):
                    for index, request in enumerate(requests):
                        # The echoed prompt goes out with the answer's first piece.
                        head = request.messages[-1].content if body.echo else ""
                        events = open_stream(model, request)
                        relay = Relay(events, model)
                        at, sent_lp = 0, 0  # characters sent, tokens whose logprobs were
                        try:
                            async for ev in relay:
                                if isinstance(ev, TextDelta) and (ev.text or head):
                                    leaf = ev.model or leaf
                                    # Each piece with its own tokens' logprobs (echo is
                                    # refused with logprobs, so ``head`` is empty then).
                                    lp = ev.logprobs if body.logprobs is not None and \
                                        ev.text else None
                                    await chunk(index, head + ev.text,
                                                logprobs=legacy_logprobs(lp, at))
                                    at += len(head + ev.text)
                                    sent_lp += len(lp or ())
                                    head = ""
                        finally:
                            await events.aclose()
                        final = relay.final
                        leaf = final.model
                        if head:
                            await chunk(index, head)
                        if final.logprobs is not None and len(final.logprobs) > sent_lp:
                            # Those no piece carried, in one chunk.
                            await chunk(index, "", logprobs=legacy_logprobs(
                                final.logprobs[sent_lp:], 0 if sent_lp == 0 else at))
                        answers.append(final)
                        if index < len(requests) - 1:  # the last one goes with the info
                            await chunk(index, "", finish=final.finish_reason or "stop")
        except Exception as exc:
            await self._stream_error(send, opened,
                                     stream_failure(exc, "completions", system, timeout),
                                     system, started)
            return
        info = _info(system, answers, started, _wants_trace(scope, body))
        merged = _merged(answers)
        done = completion_body(cid, created, leaf, [choice_body(
            len(requests) - 1, "", finish=answers[-1].finish_reason or "stop")], None,
            None if include else info, include_usage=include)
        data = b"data: " + dumps(done) + b"\n\n"
        if include:
            data += b"data: " + dumps(completion_body(cid, created, leaf, [], merged.usage,
                                                      info)) + b"\n\n"
        if not opened:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [*_SSE, (b"x-chorus-system", _ascii(system))]})
        await send({"type": "http.response.body", "body": data + b"data: [DONE]\n\n",
                    "more_body": False})
        self._done(system, merged, started)
