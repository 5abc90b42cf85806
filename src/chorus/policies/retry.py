"""Retry: call the inner model again on errors where that can help, with backoff.

    Retry("steady", model, attempts=4, base_s=0.5, max_delay_s=20)

Only ``retryable`` errors are retried (rate limit, 5xx, connection, malformed). A timeout
is not, unless ``retry_timeouts=True``: a route that went silent tends to stay silent, and
retrying it spends the caller's deadline that a fallback's next model needs.
The wait before attempt n+1 is "full jitter" (a uniform draw in [0, min(max, base * 2**n)]),
at least the server's ``Retry-After`` for a rate limit, and never past the request's
deadline: when the wait would cross it, the last error is raised at once.
A stream is retried only while nothing has reached the consumer: a failure after the
first piece propagates, since a restarted answer would repeat text already sent.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field

from chorus.config.schema import ModelRef, PatternConfig
from chorus.core import context
from chorus.core.compose import Wrapper, combine
from chorus.core.errors import ChorusError, ProviderTimeout, RateLimitError
from chorus.core.model import Model, StreamEvent, call, error_span
from chorus.core.registry import BuildContext
from chorus.core.types import Completion, Request, Span
from chorus.policies._streaming import Relay, open_stream

__all__ = ["Retry", "RetryConfig", "backoff", "build", "next_delay", "should_retry"]


# -- decisions (no I/O) ----------------------------------------------------------------


def should_retry(error: BaseException) -> bool:
    """Whether calling again may succeed: the error tree's ``retryable`` flag."""
    return isinstance(error, ChorusError) and error.retryable


def backoff(attempt: int, base_s: float, max_delay_s: float, draw: float) -> float:
    """Full-jitter backoff after failed attempt number ``attempt`` (1-based); ``draw`` is a
    uniform sample in [0, 1)."""
    ceiling = min(max_delay_s, base_s * 2.0 ** (attempt - 1))
    return ceiling * draw


#: The least time a retry must leave before the deadline for its call to be worth making.
DEADLINE_MARGIN_S = 0.01


def next_delay(
    error: BaseException,
    attempt: int,
    *,
    attempts: int,
    base_s: float,
    max_delay_s: float,
    remaining_s: float | None,
    draw: float,
    retry_timeouts: bool = False,
) -> tuple[float | None, str]:
    """How long to wait before trying again after ``error`` on attempt ``attempt``, or None
    to give up; with the reason, for the trace."""
    if not should_retry(error):
        return None, "not retryable"
    if isinstance(error, ProviderTimeout) and not retry_timeouts:
        return None, "timed out: moving on (retry_timeouts is off)"
    if attempt >= attempts:
        return None, f"gave up after {attempts} attempts"
    delay = backoff(attempt, base_s, max_delay_s, draw)
    why = "backoff"
    if isinstance(error, RateLimitError) and error.retry_after is not None:
        if error.retry_after > delay:
            delay, why = error.retry_after, "retry-after"
    # A wait that ends just short of the deadline leaves no time for the call itself.
    if remaining_s is not None and delay >= remaining_s - DEADLINE_MARGIN_S:
        return None, f"the deadline is {max(remaining_s, 0):.2f}s away; the wait is {delay:.2f}s"
    return delay, why


# -- the policy --------------------------------------------------------------------------


@dataclass(slots=True)
class _Run:
    """One request's attempts: the failed ones' spans and the decision log."""

    started: float
    attempt: int = 0
    failed: list[Span] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)


class Retry(Wrapper):
    """Calls ``inner`` up to ``attempts`` times while the error is retryable."""

    kind = "retry"
    can_stream = True

    def __init__(
        self,
        name: str,
        inner: Model,
        *,
        attempts: int = 3,
        base_s: float = 0.5,
        max_delay_s: float = 20.0,
        retry_timeouts: bool = False,
        sleep: Callable[[float], Any] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(name, inner)
        if attempts < 1:
            raise ValueError("attempts must be >= 1")
        if base_s < 0 or max_delay_s < 0:
            raise ValueError("base_s and max_delay_s must be >= 0")
        self.attempts = attempts
        self.base_s = base_s
        self.max_delay_s = max_delay_s
        self.retry_timeouts = retry_timeouts
        self._sleep = sleep
        self._rng = rng or random.Random()

    async def complete(self, request: Request) -> Completion:
        run = _Run(time.perf_counter())
        while True:
            run.attempt += 1
            t0 = time.perf_counter()
            try:
                answer = await call(self.inner, request)
            except ChorusError as exc:
                if not await self._again(run, exc, t0):
                    raise
                continue
            return self._answer(run, answer)

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        """``complete``, streamed: a failure before the first piece reaches the consumer
        is retried as in ``complete``; after it, the error propagates (a stream never
        restarts mid-answer)."""
        run = _Run(time.perf_counter())
        while True:
            run.attempt += 1
            t0 = time.perf_counter()
            events = open_stream(self.inner, request)
            relay = Relay(events, self.inner)
            try:
                async for piece in relay:
                    yield piece
                final = relay.final
            except ChorusError as exc:
                if relay.sent:
                    why = "failed after the first piece was sent: a stream never restarts"
                    self._record(run, exc, t0, why)
                    self._give_up(run, exc, why)
                    raise
                if not await self._again(run, exc, t0):
                    raise
                continue
            finally:
                await events.aclose()
            yield self._answer(run, final)
            return

    def _record(self, run: _Run, exc: ChorusError, t0: float, why: str) -> dict[str, Any]:
        """Log a failed attempt: its span, and the decision taken after it."""
        span = error_span(self.inner, exc, t0)
        span.attributes["attempt"] = run.attempt
        run.failed.append(span)
        entry: dict[str, Any] = {"attempt": run.attempt, "error": exc.code,
                                 "message": str(exc), "decision": why}
        run.log.append(entry)
        return entry

    def _give_up(self, run: _Run, exc: ChorusError, why: str) -> None:
        exc.add_note(f"retry {self.name!r}: {why}")
        # error_span() picks this up, so a parent's trace keeps every attempt.
        exc.trace = self._failed_span(run.started, run.failed, run.attempt, run.log)

    async def _again(self, run: _Run, exc: ChorusError, t0: float) -> bool:
        """Record a failed attempt and wait before the next; False to give up (the
        error then carries the retry's span)."""
        delay, why = next_delay(
            exc, run.attempt, attempts=self.attempts, base_s=self.base_s,
            max_delay_s=self.max_delay_s, remaining_s=context.remaining(),
            draw=self._rng.random(), retry_timeouts=self.retry_timeouts,
        )
        entry = self._record(run, exc, t0, why)
        if delay is None:
            self._give_up(run, exc, why)
            return False
        entry["wait_s"] = round(delay, 3)
        await self._sleep(delay)
        left = context.remaining()
        if left is not None and left <= 0:
            # The wait fit the deadline but the clock reached it anyway: the last error
            # says more than "no time left" would.
            entry["decision"] = why = "the deadline passed during the wait"
            self._give_up(run, exc, why)
            return False
        return True

    def _answer(self, run: _Run, answer: Completion) -> Completion:
        run.log.append({"attempt": run.attempt, "ok": True})
        out = combine(self, answer.text, started=run.started, parts=[answer], winner=answer,
                      attributes={"attempts": run.attempt, "retries": run.log})
        if out.trace is not None:  # children in attempt order: failures, then the answer
            out.trace.children[:0] = run.failed
        return out

    def _failed_span(self, started: float, failed: list[Span], attempt: int,
                     log: list[dict[str, Any]]) -> Span:
        latency = time.perf_counter() - started
        return Span(kind=self.kind, name=self.name, latency_s=latency,
                    start=time.time() - latency, children=failed, error=log[-1]["message"],
                    attributes={"attempts": attempt, "retries": log})


# -- YAML --------------------------------------------------------------------------------


class RetryConfig(PatternConfig):
    kind: Literal["retry"] = "retry"
    inner: ModelRef
    #: Total tries, the first included.
    attempts: int = Field(3, ge=1, le=20)
    #: The backoff ceiling of the first retry; it doubles each time up to ``max_delay_s``.
    base_s: float = Field(0.5, ge=0)
    max_delay_s: float = Field(20.0, ge=0)
    #: Retry a call that timed out too (by default a timeout gives up at once, so a
    #: fallback above moves on while the caller's deadline still has room).
    retry_timeouts: bool = False


def build(cfg: RetryConfig, b: BuildContext) -> Retry:
    return Retry(b.name, b.model(cfg.inner, "inner"), attempts=cfg.attempts,
                 base_s=cfg.base_s, max_delay_s=cfg.max_delay_s,
                 retry_timeouts=cfg.retry_timeouts)
