"""Budget: the arithmetic as plain functions, refusal before the call, settling with the
real usage, window budgets, concurrency, and store faults."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from chorus.config.builder import Config
from chorus.core.context import scope
from chorus.core.errors import BudgetExceeded, ConfigError, StoreUnavailable
from chorus.core.model import Model
from chorus.core.pricing import Price
from chorus.core.types import Completion, Params, Request, Usage
from chorus.patterns.pipeline import Pipeline
from chorus.policies._guarded import (
    Cost,
    approx_tokens,
    estimate,
    output_allowance,
    prompt_tokens,
)
from chorus.policies.budget import Budget, Ledger, Limit, Window, first_over, fmt, left
from chorus.providers.function import FunctionModel
from chorus.providers.scripted import ScriptedModel
from chorus.stores import MemoryStore, RedisStore, Store
from tests.policies._faulty import FlakyStore, redis_process, unique

# $1000 / $2000 per million tokens: a 10-in 5-out call costs 0.01 + 0.01 = $0.02.
PRICE = Price(1000, 2000)


def priced(name: str = "m", **kw: object) -> ScriptedModel:
    kw.setdefault("default", "ok")
    kw.setdefault("usage", Usage(10, 5))
    return ScriptedModel(name, price=PRICE, **kw)  # type: ignore[arg-type]


def ask(prompt: str = "hello there", max_tokens: int = 10, **meta: str) -> Request:
    req = Request.of(prompt, max_tokens=max_tokens)
    return Request(req.messages, req.params, meta) if meta else req


# -- arithmetic ---------------------------------------------------------------------------


def test_left_and_first_over() -> None:
    assert left(None, 5) == float("inf")
    assert left(10, 4) == 6
    lim = Limit(tokens=100, usd=1.0)
    assert first_over(lim, Cost(50, 0.5), Cost(50, 0.5)) is None  # exactly fits
    assert first_over(lim, Cost(50, 0.5), Cost(51, 0.1)) == "tokens"
    assert first_over(lim, Cost(0, 0.9), Cost(1, 0.2)) == "usd"
    assert first_over(Limit(usd=1.0), Cost(10**9, 0), Cost(10**9, 0.5)) is None
    # Float sums of prices must not refuse a call that fits exactly.
    assert first_over(Limit(usd=0.3), Cost(0, 0.1 + 0.1), Cost(0, 0.1)) is None


def test_ledger_holds_then_settles_with_real_usage() -> None:
    led = Ledger(Limit(usd=0.05))
    assert led.hold(Cost(13, 0.023)) is None
    assert led.hold(Cost(13, 0.023)) is None
    assert led.hold(Cost(13, 0.023)) == "usd"  # 0.069 > 0.05, and nothing held for it
    assert led.held == Cost(26, 0.046)
    led.settle(Cost(13, 0.023), Cost(15, 0.02))
    led.settle(Cost(13, 0.023), None)  # a failed call releases its hold, spends nothing
    assert led.held.usd == pytest.approx(0) and led.spent == Cost(15, 0.02)
    assert led.calls == 1


def test_estimates() -> None:
    assert approx_tokens("") == 1 and approx_tokens("abcdefgh") == 2 and approx_tokens("abcde") == 2
    model = ScriptedModel("m", default="x", params=None)
    assert output_allowance(model, ask(max_tokens=7), 99) == 7
    with_default = ScriptedModel("d", default="x", params=Params(max_tokens=33))
    assert output_allowance(with_default, Request.of("q"), 99) == 33
    assert output_allowance(model, Request.of("q"), 99) == 99

    class Counting(FunctionModel):
        def count_tokens(self, text: str) -> int:
            return len(text.split())

    counted = Counting("c", lambda r: "x")
    assert prompt_tokens(counted, Request.of("one two three four five six")) == 6
    assert prompt_tokens(model, Request.of("x" * 40)) == 10  # ~4 chars a token
    assert estimate(3, 10, PRICE) == Cost(13, 0.023)
    assert fmt("usd", 0.0230) == "$0.023" and fmt("tokens", 1234) == "1,234 tokens"


# -- per-request budgets --------------------------------------------------------------------


async def test_refuses_before_the_call_is_made() -> None:
    model = priced()
    budget = Budget("b", model, request=Limit(usd=0.01))
    with pytest.raises(BudgetExceeded) as info:
        await budget.complete(ask())
    assert model.calls == []  # never called
    err = info.value
    assert (err.unit, err.asked, err.limit, err.spent) == ("usd", pytest.approx(0.023), 0.01, 0)
    assert "'m' may cost up to $0.023" in str(err) and "$0.01 of $0.01 left" in str(err)
    span = err.trace
    assert span.kind == "budget" and span.attributes["refused"]["model"] == "m"


async def test_settles_with_real_usage_and_releases_the_rest() -> None:
    # Estimate $0.023 a call, real $0.02: a $0.045 cap allows two calls only because the
    # first call's unused $0.003 is released.
    model = priced()
    pipe = Pipeline("p", [model, model, model])
    budget = Budget("b", pipe, request=Limit(usd=0.045))
    with pytest.raises(BudgetExceeded) as info:
        await budget.complete(ask())
    assert len(model.calls) == 2
    span = info.value.trace
    assert span.attributes["spent_usd"] == pytest.approx(0.04)
    assert span.attributes["calls"] == 2
    assert info.value.spent == pytest.approx(0.04)

    ok = await Budget("b2", Pipeline("p2", [model, model]),
                      request=Limit(usd=0.045)).complete(ask())
    assert ok.cost_usd == pytest.approx(0.04)
    assert ok.trace is not None and ok.trace.kind == "budget"
    assert ok.trace.attributes["spent_usd"] == pytest.approx(0.04)
    assert ok.trace.children[0].kind == "pipeline"


async def test_token_cap_and_failed_calls_release() -> None:
    failing = ScriptedModel("f", fail_with="server_error", fail_times=1, default="ok",
                            usage=Usage(10, 5))
    budget = Budget("b", failing, request=Limit(tokens=14))
    with pytest.raises(BudgetExceeded, match="tokens"):
        await budget.complete(ask(max_tokens=20))  # 3 + 20 > 14
    budget = Budget("b", Pipeline("p", [failing]), request=Limit(tokens=15))
    with pytest.raises(Exception, match="scripted server_error"):
        await budget.complete(ask(max_tokens=10))
    answer = await budget.complete(ask(max_tokens=10))
    assert answer.usage.total_tokens == 15


async def test_nested_budgets_all_apply() -> None:
    model = priced()
    inner = Budget("inner", model, request=Limit(usd=1.0))
    outer = Budget("outer", Pipeline("p", [inner, inner]), request=Limit(usd=0.03))
    with pytest.raises(BudgetExceeded, match="budget 'outer'"):
        await outer.complete(ask())
    assert len(model.calls) == 1


async def test_no_budget_means_no_guard() -> None:
    model = priced()
    answer = await Pipeline("p", [model]).complete(ask())
    assert answer.cost_usd == pytest.approx(0.02)


# -- window budgets ---------------------------------------------------------------------------


async def test_window_budget_per_key_expires() -> None:
    model = priced()
    store = MemoryStore()
    budget = Budget("w", model, window=Window(usd=0.05, per="key", seconds=0.3), store=store)
    await budget.complete(ask(key="alice"))
    await budget.complete(ask(key="alice"))
    with pytest.raises(BudgetExceeded, match="key 'alice'"):
        await budget.complete(ask(key="alice"))
    await budget.complete(ask(key="bob"))  # another key has its own window
    status = await budget.status()
    assert status["spent"]["alice"]["usd"] == pytest.approx(0.04)
    assert status["spent"]["bob"]["usd"] == pytest.approx(0.02)
    await asyncio.sleep(0.35)
    await budget.complete(ask(key="alice"))  # a new window
    assert len(model.calls) == 4


async def run_concurrently(store: Store, n: int = 200) -> tuple[list[Completion], float, float]:
    """``n`` requests at once against one global $-window; real usage is random up to
    the allowance. Returns the answers, the limit and one request's maximum cost."""
    rng = random.Random(7)

    async def reply(request: Request) -> Completion:
        await asyncio.sleep(rng.random() * 0.01)
        out = rng.randint(1, 20)
        return model.finish("x", Usage(3, out), 0.0)

    model = FunctionModel("leaf", reply, price=PRICE)
    limit = 1.0
    budget = Budget("conc", model, window=Window(usd=limit, per="global", seconds=60),
                    store=store)
    one_max = estimate(3, 20, PRICE).usd
    results = await asyncio.gather(*(budget.complete(ask(max_tokens=20)) for _ in range(n)),
                                   return_exceptions=True)
    answers = [r for r in results if isinstance(r, Completion)]
    refused = [r for r in results if isinstance(r, BudgetExceeded)]
    assert len(answers) + len(refused) == n
    raw = await store.get("chorus:budget:conc:*:usd")
    assert raw is not None
    # The counter holds exactly what was really spent: every reservation was settled.
    assert float(raw) == pytest.approx(sum(a.cost_usd for a in answers))
    return answers, limit, one_max


async def test_200_concurrent_requests_memory() -> None:
    answers, limit, one_max = await run_concurrently(MemoryStore())
    spent = sum(a.cost_usd for a in answers)
    assert spent <= limit + one_max
    # Every request that could be afforded at its maximum got through.
    assert len(answers) >= int(limit / one_max)


async def test_200_concurrent_requests_redis(redis_url: str) -> None:
    store = RedisStore(redis_url, namespace=unique())
    try:
        answers, limit, one_max = await run_concurrently(store)
    finally:
        await store.aclose()
    assert sum(a.cost_usd for a in answers) <= limit + one_max
    assert len(answers) >= int(limit / one_max)


# -- store faults -----------------------------------------------------------------------------


async def test_store_fault_on_reserve_open_lets_the_call_through() -> None:
    model = priced()
    store = FlakyStore(fail={"reserve"})
    budget = Budget("f", model, window=Window(usd=1.0, seconds=60), store=store,
                    on_store_error="open")
    answer = await budget.complete(ask(key="k"))
    assert answer.text == "ok"
    assert answer.trace is not None
    assert "injected fault in reserve" in answer.trace.attributes["store_errors"][0]
    # Not reserved, so not charged either: no negative balance from the settle.
    assert await store.inner.scan("chorus:budget:") == []


async def test_store_fault_on_reserve_closed_refuses() -> None:
    model = priced()
    budget = Budget("f", model, window=Window(usd=1.0, seconds=60),
                    store=FlakyStore(fail={"reserve"}), on_store_error="closed")
    with pytest.raises(StoreUnavailable, match="budget 'f': cannot reserve: injected fault"):
        await budget.complete(ask())
    assert model.calls == []


async def test_store_fault_on_settle_keeps_the_answer_without_double_charging() -> None:
    model = priced()
    store = FlakyStore(fail={"incr"})
    budget = Budget("f", model, window=Window(usd=1.0, seconds=60), store=store,
                    on_store_error="closed")
    answer = await budget.complete(ask())
    assert answer.text == "ok"
    assert answer.trace is not None and answer.trace.attributes["store_errors"]
    # The reservation (the estimate) stays charged once; nothing else was added.
    raw = await store.inner.get("chorus:budget:f:-:usd")
    assert raw is not None and float(raw) == pytest.approx(0.023)


async def test_real_redis_stopped_mid_test(tmp_path: Path) -> None:
    with redis_process(tmp_path) as server:
        stores = [RedisStore(server.url, namespace=unique(), timeout_s=1.0) for _ in range(2)]
        model = priced()
        lenient = Budget("open", model, window=Window(usd=1.0, seconds=60), store=stores[0],
                         on_store_error="open")
        strict = Budget("closed", model, window=Window(usd=1.0, seconds=60),
                        store=stores[1], on_store_error="closed")
        await lenient.complete(ask())
        await strict.complete(ask())
        server.stop()
        answer = await lenient.complete(ask())
        assert answer.text == "ok" and answer.trace is not None
        assert "cannot reach Redis" in answer.trace.attributes["store_errors"][0]
        calls = len(model.calls)
        with pytest.raises(StoreUnavailable, match="budget 'closed'.*cannot reach Redis"):
            await strict.complete(ask())
        assert len(model.calls) == calls
        for s in stores:
            await s.aclose()


def test_unreachable_redis_is_one_clear_error_at_start_up(tmp_path: Path) -> None:
    with redis_process(tmp_path) as server:
        url = server.url
    cfg = Config.from_text(f"""
models:
  m: {{provider: scripted, default: ok}}
systems:
  capped:
    kind: budget
    inner: m
    window: {{usd: 1, seconds: 60}}
    store: {{kind: redis, url: "{url}"}}
""")
    with pytest.raises(ConfigError, match=r"cannot reach Redis at redis://127\.0\.0\.1:\d+/0: "
                       "connection refused"):
        cfg.get("capped")


# -- YAML ---------------------------------------------------------------------------------


async def test_yaml_budget_around_a_pattern() -> None:
    cfg = Config.from_text("""
models:
  a: {provider: scripted, default: one, usage: {input_tokens: 10, output_tokens: 5},
      price: {input: 1000, output: 2000}}
systems:
  capped:
    kind: budget
    inner: {kind: pipeline, steps: [a, a, a]}
    request: {usd: 0.045}
    window: {per: session, seconds: 60, tokens: 1000}
""")
    model = cfg.get("capped")
    assert isinstance(model, Budget) and model.window is not None
    with pytest.raises(BudgetExceeded):
        await model.complete(Request(ask().messages, ask().params, {"session": "s1"}))
    status = await model.status()
    assert status["spent"]["s1"]["tokens"] == 30


def test_yaml_budget_needs_a_limit() -> None:
    cfg = Config.from_text("""
models: {m: {provider: scripted, default: ok}}
systems: {b: {kind: budget, inner: m}}
""")
    with pytest.raises(ConfigError, match="a budget needs a limit"):
        cfg.get("b")


async def test_deadline_still_applies_under_a_budget() -> None:
    slow: Model = ScriptedModel("slow", default="x", latency_s=1.0)
    budget = Budget("b", slow, request=Limit(tokens=10_000))
    with scope(deadline_s=0.05), pytest.raises(Exception, match="deadline"):
        await budget.complete(ask())
