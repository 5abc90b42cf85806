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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field

from chorus.config.schema import ModelRef, PatternConfig
from chorus.core import context
from chorus.core.compose import Wrapper, combine
from chorus.core.errors import ChorusError, ProviderTimeout, RateLimitError
from chorus.core.model import Model, error_span
from chorus.core.registry import BuildContext
from chorus.core.types import Completion, Request, Span

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
    attempt: int = 1
    failed: list[Span] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)


class Retry(Wrapper[_Run]):
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

    # -- the wrapper's steps (chorus.core.Wrapper) ----------------------------------------

    async def enter(self, request: Request, started: float) -> _Run:
        return _Run(started)

    async def failed(self, state: _Run, error: ChorusError, started: float,
                     inner_started: float, sent: bool) -> bool:
        """Try again when the error is retryable, after the backoff; a stream only while
        nothing has reached the consumer (it never restarts mid-answer)."""
        if sent:
            why = "failed after the first piece was sent: a stream never restarts"
            self._record(state, error, inner_started, why)
            self._give_up(state, error, why)
            return False
        if not await self._again(state, error, inner_started):
            return False
        state.attempt += 1
        return True

    async def answered(self, state: _Run, answer: Completion, started: float) -> Completion:
        state.log.append({"attempt": state.attempt, "ok": True})
        out = combine(self, answer.text, started=state.started, parts=[answer],
                      winner=answer, attributes={"attempts": state.attempt,
                                                 "retries": state.log})
        if out.trace is not None:  # children in attempt order: failures, then the answer
            out.trace.children[:0] = state.failed
        return out

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
