"""Budget, rate limit, breaker and retry streaming: piece by piece, with the guarantees of
their ``complete`` (refusals before the first piece, settling, failures mid-stream,
early close and cancellation)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, cast

import pytest

from chorus.core.errors import BudgetExceeded, ChorusError, RateLimitError, ServerError
from chorus.core.model import Model, StreamEvent
from chorus.core.pricing import Price
from chorus.core.types import Completion, Request, TextDelta, Usage
from chorus.patterns.pipeline import Pipeline
from chorus.policies._guarded import approx_tokens, estimate
from chorus.policies.breaker import Breaker, BreakerState
from chorus.policies.budget import Budget, Limit, Window
from chorus.policies.cache import Cache
from chorus.policies.ratelimit import RateLimit
from chorus.policies.retry import Retry
from chorus.providers.scripted import ScriptedModel
from chorus.stores import MemoryStore

PRICE = Price(1000, 2000)  # a 10-in 5-out call costs $0.02
PROMPT = "hello there"  # ~3 tokens: a call with max_tokens=10 is estimated at $0.023


class Drip(ScriptedModel):
    """A ScriptedModel whose stream pauses between words and, with ``cut``, fails after
    that many pieces; ``open`` counts its streams not yet closed."""

    def __init__(self, name: str = "m", *, pause_s: float = 0.0, cut: int | None = None,
                 **kw: Any) -> None:
        kw.setdefault("default", "one two three")
        kw.setdefault("usage", Usage(10, 5))
        super().__init__(name, price=PRICE, **kw)
        self.pause_s, self.cut, self.open = pause_s, cut, 0

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        self.open += 1
        try:
            sent = 0
            async for event in super().stream(request):
                if isinstance(event, TextDelta):
                    if sent == self.cut:
                        raise ServerError("connection reset mid-answer", model=self.name)
                    if sent and self.pause_s:
                        await asyncio.sleep(self.pause_s)
                    sent += 1
                yield event
        finally:
            self.open -= 1


def ask(max_tokens: int = 10) -> Request:
    return Request.of(PROMPT, max_tokens=max_tokens)


def opened(model: Model, request: Request | None = None) -> AsyncGenerator[StreamEvent, None]:
    return cast(AsyncGenerator[StreamEvent, None], model.stream(request or ask()))


async def drain(model: Model, request: Request | None = None) -> tuple[list[str], Completion]:
    pieces: list[str] = []
    final: Completion | None = None
    async for event in opened(model, request):
        if isinstance(event, Completion):
            final = event
        else:
            pieces.append(event.text)
    assert final is not None
    return pieces, final


async def fail(model: Model, request: Request | None = None) -> tuple[list[str], ChorusError]:
    """The pieces a stream sent before it raised, and the error."""
    pieces: list[str] = []
    with pytest.raises(ChorusError) as info:
        async for event in opened(model, request):
            assert not isinstance(event, Completion)
            pieces.append(event.text)
    return pieces, info.value


async def first_piece_then_close(model: Model) -> str:
    stream = opened(model)
    event = await anext(stream)
    await stream.aclose()
    assert isinstance(event, TextDelta)
    return event.text


async def window_spent(budget: Budget, who: str = "*") -> dict[str, float]:
    return cast(dict[str, float], (await budget.status())["spent"].get(who, {}))


def windowed(model: Model, usd: float = 1.0) -> Budget:
    return Budget("b", model, window=Window(usd=usd, per="global", seconds=60),
                  store=MemoryStore())


# -- budget -----------------------------------------------------------------------------


async def test_budget_refuses_before_the_first_piece() -> None:
    model = Drip()
    pieces, err = await fail(Budget("b", model, request=Limit(usd=0.01)))
    assert isinstance(err, BudgetExceeded) and pieces == [] and model.calls == []
    assert err.trace.kind == "budget"  # type: ignore[union-attr]
    assert err.trace.attributes["refused"]["model"] == "m"  # type: ignore[union-attr]


async def test_budget_streams_and_settles_the_real_usage() -> None:
    model = Drip()
    budget = windowed(model)
    pieces, final = await drain(budget)
    assert pieces == ["one", " two", " three"]
    assert final.trace is not None and final.trace.kind == "budget"
    assert final.trace.attributes["spent_usd"] == pytest.approx(0.02)
    assert final.trace.children[0].name == "m"
    # The $0.023 estimate was held, then settled down to the real $0.02.
    assert await window_spent(budget) == pytest.approx({"usd": 0.02})


async def test_budget_failure_mid_stream_settles_what_was_used() -> None:
    budget = windowed(Drip(cut=2))
    pieces, err = await fail(budget)
    assert pieces == ["one", " two"] and isinstance(err, ServerError)
    used = estimate(approx_tokens(PROMPT), approx_tokens("one two"), PRICE)
    assert await window_spent(budget) == pytest.approx({"usd": used.usd})
    assert err.trace.attributes["spent_usd"] == pytest.approx(used.usd)  # type: ignore[union-attr]
    # Failing before the first piece spends nothing, as a failed complete() does.
    before = windowed(Drip(replies=[ServerError("down")]))
    assert (await fail(before))[0] == []
    assert await window_spent(before) == pytest.approx({"usd": 0.0})


async def test_budget_early_close_and_cancellation_release_the_hold() -> None:
    model = Drip(pause_s=0.05)
    budget = windowed(model)
    assert await first_piece_then_close(budget) == "one"
    assert model.open == 0  # the leaf's stream was closed at once, not left to the GC
    used = estimate(approx_tokens(PROMPT), approx_tokens("one"), PRICE).usd
    assert await window_spent(budget) == pytest.approx({"usd": used})

    got_one = asyncio.Event()

    async def consume() -> None:
        async for event in budget.stream(ask()):
            if isinstance(event, TextDelta):
                got_one.set()

    task = asyncio.create_task(consume())
    await got_one.wait()
    task.cancel()  # while the leaf pauses before its second piece
    with pytest.raises(asyncio.CancelledError):
        await task
    assert model.open == 0
    assert await window_spent(budget) == pytest.approx({"usd": 2 * used})


async def test_budget_concurrent_streams_never_overspend_or_leak() -> None:
    model = Drip(pause_s=0.001)
    limit = 1.0
    budget = windowed(model, usd=limit)
    rng = random.Random(3)

    async def one(close_early: bool) -> tuple[str, float]:
        await asyncio.sleep(rng.random() * 0.01)
        stream = opened(budget)
        try:
            async for event in stream:
                if isinstance(event, Completion):
                    return "done", event.cost_usd
                if close_early:
                    return "closed", 0.0
            raise AssertionError("no final answer")
        except BudgetExceeded:
            return "refused", 0.0
        finally:
            await stream.aclose()

    results = await asyncio.gather(*(one(i % 3 == 0) for i in range(120)))
    done = [cost for what, cost in results if what == "done"]
    closed = sum(1 for what, _ in results if what == "closed")
    refused = sum(1 for what, _ in results if what == "refused")
    assert refused > 0 and closed > 0 and done
    # Every reservation held up to $0.023 and was settled: the window holds exactly what
    # was used (a closed stream's prompt and first word), and never more than the limit.
    partial = estimate(approx_tokens(PROMPT), approx_tokens("one"), PRICE).usd
    spent = (await window_spent(budget))["usd"]
    assert spent == pytest.approx(sum(done) + closed * partial)
    assert spent <= limit
    assert len(done) + closed >= int(limit / 0.023)
    assert model.open == 0


async def test_budget_reaches_leaves_under_a_streamed_pattern() -> None:
    model = Drip()
    # A pipeline cannot stream: its leaf calls still go through the budget ($0.045 buys
    # two calls once each $0.023 hold is settled to $0.02).
    pipe = Budget("b", Pipeline("p", [model, model, model]), request=Limit(usd=0.045))
    pieces, err = await fail(pipe)
    assert isinstance(err, BudgetExceeded) and pieces == [] and len(model.calls) == 2
    # A streaming cache below: the leaf's stream is charged.
    budget = windowed(Cache("c", model))
    pieces, final = await drain(budget)
    assert pieces == ["one", " two", " three"]
    assert final.trace is not None and final.trace.attributes["calls"] == 1
    assert await window_spent(budget) == pytest.approx({"usd": 0.02})


async def test_the_whole_stack_streams_piece_by_piece() -> None:
    model = Drip()
    stack = Budget("b", RateLimit("rl", Retry("r", Breaker("br", model), base_s=0),
                                  requests_per_minute=60), request=Limit(usd=1.0))
    pieces, final = await drain(stack)
    assert pieces == ["one", " two", " three"] and final.text == "one two three"
    assert final.trace is not None
    assert [s.kind for s in final.trace.walk()] == ["budget", "ratelimit", "retry", "breaker",
                                                     "model"]
    assert final.trace.attributes["spent_usd"] == pytest.approx(0.02)


# -- rate limit ---------------------------------------------------------------------------


async def test_ratelimit_takes_the_permit_before_the_stream() -> None:
    model = Drip()
    limiter = RateLimit("rl", model, requests_per_minute=1, on_limit="refuse")
    pieces, final = await drain(limiter)
    assert pieces == ["one", " two", " three"]
    assert final.trace is not None and final.trace.kind == "ratelimit"
    assert final.trace.attributes["who"] == "*"
    pieces, err = await fail(limiter)
    assert isinstance(err, RateLimitError) and pieces == [] and len(model.calls) == 1
    # A failure mid-stream keeps the limiter's span, with the failed call under it.
    cut = RateLimit("rl2", Drip("cut", cut=1), requests_per_minute=60)
    pieces, err = await fail(cut)
    assert pieces == ["one"] and err.trace.kind == "ratelimit"  # type: ignore[union-attr]
    assert err.trace.children[0].name == "cut"  # type: ignore[union-attr]


# -- breaker ------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_breaker_counts_stream_failures_and_refuses_before_the_stream() -> None:
    clock = Clock()
    model = Drip(cut=1)
    br = Breaker("br", model, failures=2, cooldown_s=10, clock=clock)
    for _ in range(2):
        pieces, err = await fail(br)  # fails after one piece: a health failure
        assert pieces == ["one"] and isinstance(err, ServerError)
    assert (await br.status())["state"] == "open"
    pieces, err = await fail(br)
    assert pieces == [] and "circuit open" in str(err) and len(model.calls) == 2

    clock.now += 10
    model.cut = None
    pieces, final = await drain(br)  # the probe streams to its end: closed
    assert pieces == ["one", " two", " three"]
    assert final.trace is not None and final.trace.kind == "breaker"
    assert final.trace.attributes == {"model": "m", "state": "open", "probe": True,
                                      "after": "closed"}
    assert (await br.status())["state"] == "closed"


async def test_breaker_probe_closed_early_lets_another_caller_probe() -> None:
    clock = Clock()
    store = MemoryStore()
    model = Drip()
    br = Breaker("br", model, failures=1, cooldown_s=5, probe_timeout_s=60, store=store,
                 clock=clock)
    await store.set(br.key, BreakerState("open", clock.now - 6, 1).dumps())
    assert await first_piece_then_close(br) == "one"
    # Without releasing the claim, the next caller would be refused for 60 s.
    pieces, final = await drain(br)
    assert pieces == ["one", " two", " three"]
    assert final.trace is not None and final.trace.attributes["probe"] is True
    assert (await br.status())["state"] == "closed"


# -- retry --------------------------------------------------------------------------------


async def test_retry_retries_failures_before_the_first_piece() -> None:
    model = Drip(replies=[ServerError("down"), "one two three"])
    retry = Retry("r", model, attempts=3, base_s=0)
    pieces, final = await drain(retry)
    assert pieces == ["one", " two", " three"] and len(model.calls) == 2
    assert final.trace is not None and final.trace.kind == "retry"
    assert final.trace.attributes["attempts"] == 2
    assert [c.error is not None for c in final.trace.children] == [True, False]


async def test_retry_never_restarts_a_stream_mid_answer() -> None:
    model = Drip(cut=1)
    retry = Retry("r", model, attempts=3, base_s=0)
    pieces, err = await fail(retry)
    assert pieces == ["one"] and isinstance(err, ServerError) and len(model.calls) == 1
    log = err.trace.attributes["retries"]  # type: ignore[union-attr]
    assert "never restarts" in log[-1]["decision"]
    # A consumer that stops early is not a failure: nothing is retried.
    closing = Drip(pause_s=0.01)
    assert await first_piece_then_close(Retry("r2", closing, base_s=0)) == "one"
    assert len(closing.calls) == 1 and closing.open == 0
