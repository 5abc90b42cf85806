"""ScriptedModel: the public test double. Answers from a queue or by regex on the
prompt, with a set latency, usage and failures; it records every request it saw.

    model = ScriptedModel("fake", replies=["Paris", RateLimitError("slow down")])
    model = ScriptedModel("fake", rules={r"capital": "Paris"}, default="I don't know")
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Literal

from pydantic import Field

from chorus.config.schema import ProviderConfig
from chorus.core import errors
from chorus.core.errors import BadRequestError, ChorusError
from chorus.core.model import StreamEvent
from chorus.core.types import Completion, Request, TextDelta, Usage
from chorus.providers._base import Provider, common_kwargs

__all__ = ["ScriptedModel", "ScriptedConfig", "FAILURES", "word_count"]

#: Failure names usable from YAML (``fail_with:``) and what each raises.
FAILURES: dict[str, type[errors.ProviderError]] = {
    "timeout": errors.ProviderTimeout,
    "rate_limit": errors.RateLimitError,
    "server_error": errors.ServerError,
    "context_length": errors.ContextLengthError,
    "connection": errors.ProviderConnectionError,
    "auth": errors.AuthenticationError,
    "bad_request": errors.BadRequestError,
    "malformed": errors.MalformedResponse,
}


def word_count(text: str) -> int:
    """A deterministic stand-in for a tokenizer: one token per word, at least one."""
    return max(1, len(text.split()))


Reply = str | BaseException


class ScriptedModel(Provider):
    provider = "scripted"
    can_stream = True

    def __init__(
        self,
        name: str = "scripted",
        *,
        replies: Sequence[Reply] = (),
        rules: Mapping[str, Reply] | None = None,
        default: Reply | None = None,
        cycle: bool = False,
        latency_s: float = 0.0,
        usage: Usage | None = None,
        fail_with: str | None = None,
        fail_times: int = 0,
        logprob: float | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("local", True)
        super().__init__(name, **kwargs)
        self.replies: deque[Reply] = deque(replies)
        self.rules = [(re.compile(p, re.IGNORECASE), r) for p, r in (rules or {}).items()]
        self.default = default
        self.cycle = cycle
        self.latency_s = latency_s
        self.usage = usage
        if fail_with is not None and fail_with not in FAILURES:
            raise ValueError(f"fail_with must be one of {', '.join(FAILURES)}")
        self.fail_with = fail_with
        self.fail_times = fail_times
        self.logprob = logprob
        self.calls: list[Request] = []

    def _next(self, request: Request) -> Reply:
        if self.fail_with and (self.fail_times < 0 or len(self.calls) <= self.fail_times):
            return FAILURES[self.fail_with](f"scripted {self.fail_with}", model=self.name)
        prompt = request.prompt
        for pattern, reply in self.rules:
            if pattern.search(prompt):
                return reply
        if self.replies:
            reply = self.replies.popleft()
            if self.cycle:
                self.replies.append(reply)
            return reply
        if self.default is not None:
            return self.default
        return BadRequestError("scripted model has no reply left for this prompt",
                               model=self.name)

    async def _answer(self, request: Request) -> str:
        self.calls.append(request)
        reply = self._next(request)
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)
        if isinstance(reply, BaseException):
            raise reply
        return reply

    def _usage(self, request: Request, text: str) -> Usage:
        if self.usage is not None:
            return self.usage
        return Usage(sum(word_count(m.content) for m in request.messages), word_count(text))

    async def complete(self, request: Request) -> Completion:
        started = time.perf_counter()
        text = await self._answer(request)
        return self.finish(text, self._usage(request, text), started, logprob=self.logprob)

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        started = time.perf_counter()
        text = await self._answer(request)
        for piece in re.findall(r"\s*\S+", text) or [text]:
            yield TextDelta(piece, self.name)
        yield self.finish(text, self._usage(request, text), started, logprob=self.logprob)


class ScriptedConfig(ProviderConfig):
    provider: Literal["scripted"] = "scripted"
    replies: list[str] = Field(default_factory=list)
    rules: dict[str, str] = Field(default_factory=dict)
    default: str | None = None
    cycle: bool = True
    latency_s: float = Field(0.0, ge=0)
    usage: dict[str, int] | None = None
    fail_with: str | None = None
    fail_times: int = 0
    logprob: float | None = None


def build(cfg: ScriptedConfig, b: Any) -> ScriptedModel:
    usage = Usage(**cfg.usage) if cfg.usage else None
    if not (cfg.replies or cfg.rules or cfg.default is not None or cfg.fail_with):
        raise ChorusError("a scripted model needs replies, rules, default or fail_with")
    return ScriptedModel(
        b.name, replies=cfg.replies, rules=cfg.rules, default=cfg.default, cycle=cfg.cycle,
        latency_s=cfg.latency_s, usage=usage, fail_with=cfg.fail_with,
        fail_times=cfg.fail_times, logprob=cfg.logprob, **common_kwargs(cfg),
    )
