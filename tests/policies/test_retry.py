"""Retry: what is retried, how long it waits, and when it gives up."""

from __future__ import annotations

import random
import time

import pytest

from chorus.config.builder import Config
from chorus.core import context
from chorus.core.errors import (
    BadRequestError,
    DeadlineExceeded,
    ProviderTimeout,
    RateLimitError,
    ServerError,
)
from chorus.core.model import error_span
from chorus.core.types import Request
from chorus.policies.retry import Retry, backoff, next_delay, should_retry
from chorus.providers.scripted import ScriptedModel


class Sleeps:
    """Records the waits instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


# -- decisions (no I/O) ------------------------------------------------------------------


def test_only_retryable_errors_are_retried() -> None:
    assert should_retry(ServerError("x"))
    assert should_retry(RateLimitError("x"))
    assert not should_retry(BadRequestError("x"))
    assert not should_retry(DeadlineExceeded("x"))
    assert not should_retry(ValueError("x"))


def test_backoff_is_full_jitter_capped() -> None:
    assert backoff(1, 0.5, 20, 0.999) == pytest.approx(0.4995)
    assert backoff(3, 0.5, 20, 0.5) == pytest.approx(1.0)  # ceiling 2.0
    assert backoff(10, 0.5, 20, 0.5) == pytest.approx(10.0)  # ceiling capped at 20
    assert backoff(4, 0.5, 20, 0.0) == 0.0


def test_next_delay_decisions() -> None:
    kw = {"attempts": 3, "base_s": 1.0, "max_delay_s": 8.0, "draw": 0.5}
    assert next_delay(ServerError("x"), 1, remaining_s=None, **kw) == (0.5, "backoff")  # type: ignore[arg-type]
    assert next_delay(RateLimitError("x", retry_after=3), 1, remaining_s=None,
                      **kw) == (3, "retry-after")  # type: ignore[arg-type]
    # a short retry-after does not shorten the backoff
    assert next_delay(RateLimitError("x", retry_after=0.1), 2, remaining_s=None,
                      **kw) == (1.0, "backoff")  # type: ignore[arg-type]
    delay, why = next_delay(ServerError("x"), 3, remaining_s=None, **kw)  # type: ignore[arg-type]
    assert delay is None and why == "gave up after 3 attempts"
    delay, why = next_delay(BadRequestError("x"), 1, remaining_s=None, **kw)  # type: ignore[arg-type]
    assert delay is None and why == "not retryable"
    delay, why = next_delay(RateLimitError("x", retry_after=3), 1, remaining_s=2.0,
                            **kw)  # type: ignore[arg-type]
    assert delay is None and "deadline" in why
    # a wait that would end a few ms before the deadline leaves no time for the call
    delay, why = next_delay(ServerError("x"), 1, remaining_s=0.505, **kw)  # type: ignore[arg-type]
    assert delay is None and "deadline" in why
    assert next_delay(ServerError("x"), 1, remaining_s=0.6, **kw) == (0.5, "backoff")  # type: ignore[arg-type]


# -- the policy ---------------------------------------------------------------------------


async def test_retries_until_it_answers_and_records_each_attempt() -> None:
    inner = ScriptedModel("m", fail_with="server_error", fail_times=2, default="ok")
    sleeps = Sleeps()
    retry = Retry("r", inner, attempts=4, base_s=1, sleep=sleeps, rng=random.Random(1))
    out = await retry.complete(Request.of("q"))
    assert out.text == "ok" and len(inner.calls) == 3
    assert len(sleeps.waits) == 2
    assert 0 <= sleeps.waits[0] <= 1 and 0 <= sleeps.waits[1] <= 2
    span = out.trace
    assert span is not None and span.kind == "retry" and span.attributes["attempts"] == 3
    log = span.attributes["retries"]
    assert [e.get("error") for e in log] == ["server_error", "server_error", None]
    assert log[0]["decision"] == "backoff" and log[0]["wait_s"] == round(sleeps.waits[0], 3)
    assert [c.error is not None for c in span.children] == [True, True, False]
    assert [c.attributes.get("attempt") for c in span.children[:2]] == [1, 2]


async def test_retry_after_is_honoured() -> None:
    inner = ScriptedModel("m", replies=[RateLimitError("slow down", retry_after=2.5), "ok"])
    sleeps = Sleeps()
    out = await Retry("r", inner, base_s=0.01, sleep=sleeps).complete(Request.of("q"))
    assert out.text == "ok" and sleeps.waits == [2.5]
    assert out.trace is not None
    assert out.trace.attributes["retries"][0]["decision"] == "retry-after"


async def test_bad_request_is_not_retried() -> None:
    inner = ScriptedModel("m", fail_with="bad_request", fail_times=-1, default="x")
    sleeps = Sleeps()
    with pytest.raises(BadRequestError):
        await Retry("r", inner, attempts=5, sleep=sleeps).complete(Request.of("q"))
    assert len(inner.calls) == 1 and sleeps.waits == []


async def test_gives_up_after_max_attempts_with_the_last_error() -> None:
    inner = ScriptedModel("m", fail_with="timeout", fail_times=-1, default="x")
    sleeps = Sleeps()
    retry = Retry("r", inner, attempts=3, sleep=sleeps, retry_timeouts=True)
    with pytest.raises(Exception, match="scripted timeout") as info:
        await retry.complete(Request.of("q"))
    assert len(inner.calls) == 3 and len(sleeps.waits) == 2
    span = error_span(retry, info.value, time.perf_counter())
    assert span.kind == "retry" and len(span.children) == 3
    assert span.attributes["retries"][-1]["decision"] == "gave up after 3 attempts"


async def test_a_timeout_moves_on_at_once_unless_configured() -> None:
    # A route that went silent is not retried: the deadline is left to a fallback above.
    inner = ScriptedModel("m", fail_with="timeout", fail_times=-1, default="x")
    sleeps = Sleeps()
    retry = Retry("r", inner, attempts=3, sleep=sleeps)
    with pytest.raises(ProviderTimeout) as info:
        await retry.complete(Request.of("q"))
    assert len(inner.calls) == 1 and sleeps.waits == []
    span = error_span(retry, info.value, time.perf_counter())
    assert "moving on" in span.attributes["retries"][-1]["decision"]
    built = Config.from_text("models:\n  m: {provider: scripted, default: x}\nsystems:\n"
                             "  r: {kind: retry, inner: m, retry_timeouts: true}\n").get("r")
    assert isinstance(built, Retry) and built.retry_timeouts


async def test_never_sleeps_past_the_deadline() -> None:
    inner = ScriptedModel("m", replies=[RateLimitError("slow", retry_after=5), "ok"])
    started = time.monotonic()
    with context.scope(deadline_s=0.5), pytest.raises(RateLimitError):
        await Retry("r", inner, attempts=5).complete(Request.of("q"))
    assert time.monotonic() - started < 0.4
    assert len(inner.calls) == 1


async def test_retries_within_the_deadline_then_stops() -> None:
    inner = ScriptedModel("m", fail_with="connection", fail_times=-1, default="x")
    started = time.monotonic()
    with context.scope(deadline_s=0.6), pytest.raises(Exception, match="scripted connection"):
        await Retry("r", inner, attempts=50, base_s=0.1, max_delay_s=0.1).complete(
            Request.of("q"))
    assert time.monotonic() - started < 0.6
    assert 2 <= len(inner.calls) < 50


def test_yaml() -> None:
    cfg = Config.from_text("""
models: {m: {provider: scripted, default: hi}}
systems: {r: {kind: retry, inner: m, attempts: 5, base_s: 0.1, max_delay_s: 2}}
""")
    r = cfg.get("r")
    assert isinstance(r, Retry) and (r.attempts, r.base_s, r.max_delay_s) == (5, 0.1, 2)
    with pytest.raises(Exception, match="attempts"):
        Config.from_text("""
models: {m: {provider: scripted, default: hi}}
systems: {r: {kind: retry, inner: m, attempts: 0}}
""").get("r")
