"""ScriptedModel: the public test double. Answers from a queue or by regex on the
prompt, with a set latency, usage and failures; it records every request it saw.

    model = ScriptedModel("fake", replies=["Paris", RateLimitError("slow down")])
    model = ScriptedModel("fake", rules={r"capital": "Paris"}, default="I don't know")
    model = ScriptedModel("agent", replies=[ToolCall("c1", "get_weather", '{"city":"Paris"}'),
                                            "It is sunny in Paris."])

A reply that is a ``ToolCall`` (or a tuple of them) answers with those calls and
``finish_reason="tool_calls"``; in YAML, ``{tool_call: {name: ..., arguments: {...}}}``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chorus.config.schema import ProviderConfig
from chorus.core import errors
from chorus.core.errors import BadRequestError, ChorusError
from chorus.core.model import StreamEvent, deltas_of
from chorus.core.registry import BuildContext
from chorus.core.types import Completion, Request, TextDelta, ToolCall, Usage
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


Reply = str | BaseException | ToolCall | tuple[ToolCall, ...]
_call_ids = itertools.count(1)


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

    async def _answer(self, request: Request) -> tuple[str, tuple[ToolCall, ...]]:
        self.calls.append(request)
        reply = self._next(request)
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(reply, ToolCall):
            return "", (reply,)
        if isinstance(reply, tuple):
            return "", reply
        return reply, ()

    def _done(self, request: Request, text: str, calls: tuple[ToolCall, ...], started: float
              ) -> Completion:
        usage = self._usage(request, text or " ".join(c.arguments for c in calls))
        return self.finish(text, usage, started, logprob=self.logprob, tool_calls=calls,
                           finish_reason="tool_calls" if calls else "stop")

    def _usage(self, request: Request, text: str) -> Usage:
        if self.usage is not None:
            return self.usage
        return Usage(sum(word_count(m.content) for m in request.messages), word_count(text))

    async def complete(self, request: Request) -> Completion:
        started = time.perf_counter()
        self.check_accepts(request)
        text, calls = await self._answer(request)
        return self._done(request, text, calls, started)

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        started = time.perf_counter()
        self.check_accepts(request)
        text, calls = await self._answer(request)
        answer = self._done(request, text, calls, started)
        if calls:
            for delta in deltas_of(answer):
                yield delta
        else:
            for piece in re.findall(r"\s*\S+", text) or [text]:
                yield TextDelta(piece, self.name)
        yield answer


class ToolCallReply(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolCallSpec(BaseModel):
    """``{tool_call: {name, arguments}}``: a reply that calls a tool."""

    model_config = ConfigDict(extra="forbid")
    tool_call: ToolCallReply

    def reply(self) -> ToolCall:
        return ToolCall(f"call_{next(_call_ids)}", self.tool_call.name,
                        json.dumps(self.tool_call.arguments))


class ScriptedConfig(ProviderConfig):
    provider: Literal["scripted"] = "scripted"
    replies: list[str | ToolCallSpec] = Field(default_factory=list)
    rules: dict[str, str | ToolCallSpec] = Field(default_factory=dict)
    default: str | None = None
    cycle: bool = True
    latency_s: float = Field(0.0, ge=0)
    usage: dict[str, int] | None = None
    fail_with: str | None = None
    fail_times: int = 0
    logprob: float | None = None


def build(cfg: ScriptedConfig, b: BuildContext) -> ScriptedModel:
    usage = Usage(**cfg.usage) if cfg.usage else None
    if not (cfg.replies or cfg.rules or cfg.default is not None or cfg.fail_with):
        raise ChorusError("a scripted model needs replies, rules, default or fail_with")
    def reply(r: str | ToolCallSpec) -> Reply:
        return r if isinstance(r, str) else r.reply()

    return ScriptedModel(
        b.name, replies=[reply(r) for r in cfg.replies],
        rules={k: reply(v) for k, v in cfg.rules.items()}, default=cfg.default, cycle=cfg.cycle,
        latency_s=cfg.latency_s, usage=usage, fail_with=cfg.fail_with,
        fail_times=cfg.fail_times, logprob=cfg.logprob, **common_kwargs(cfg),
    )
