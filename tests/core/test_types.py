import asyncio
import dataclasses

import pytest

from chorus import UNSET, Completion, Params, Request, ScriptedModel, Span, Usage, run_sync
from chorus.core import context
from chorus.core.errors import DeadlineExceeded, RateLimitError, StreamingNotSupported
from chorus.core.model import Model, call, stream_or_complete
from chorus.core.pricing import Price, lookup_price
from chorus.core.types import TextDelta


def test_unset_is_not_none() -> None:
    p = Params(max_tokens=None)
    assert p.max_tokens is None
    assert Params().max_tokens is UNSET
    assert p.given() == {"max_tokens": None}
    assert Params().get("max_tokens", 7) == 7
    assert p.get("max_tokens", 7) is None


def test_params_over_fills_only_unset() -> None:
    base = Params(temperature=0.5, max_tokens=10)
    mine = Params(max_tokens=None)
    merged = mine.over(base)
    assert merged.temperature == 0.5
    assert merged.max_tokens is None


def test_params_from_dict_rejects_unknown_and_normalises_stop() -> None:
    assert Params.from_dict({"stop": "\n"}).stop == ("\n",)
    with pytest.raises(TypeError, match="temprature"):
        Params.from_dict({"temprature": 1})


def test_request_helpers() -> None:
    r = Request.of("hi", system="be brief", temperature=0)
    assert r.prompt == "hi" and r.system == "be brief"
    assert r.params.temperature == 0
    r2 = r.with_prompt("again")
    assert [m.role for m in r2.messages] == ["system", "user"] and r2.prompt == "again"
    assert r.with_params(max_tokens=5).params.max_tokens == 5
    assert r.with_defaults(Params(temperature=1, seed=3)).params.temperature == 0


def test_frozen_and_slotted() -> None:
    c = Completion("x", "m")
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.text = "y"  # type: ignore[misc]
    assert not hasattr(c, "__dict__")


def test_usage_adds() -> None:
    assert Usage(1, 2) + Usage(3, 4) == Usage(4, 6)
    assert Usage.total([Usage(1, 1), Usage(2, 2)]).total_tokens == 6


def test_span_to_dict_nests() -> None:
    root = Span("vote", "v", children=[Span("model", "a", usage=Usage(1, 2))])
    d = root.to_dict()
    assert d["children"][0]["usage"] == {"input_tokens": 1, "output_tokens": 2}
    assert [s.name for s in root.walk()] == ["v", "a"]


def test_price_cost_and_lookup() -> None:
    assert Price(1.0, 2.0).cost(Usage(1_000_000, 500_000)) == pytest.approx(2.0)
    assert lookup_price("gpt-4o-mini") == Price(0.15, 0.60, cached_input=0.075)
    # Prompt-cache reads and writes at their own prices; unset, at the input price.
    cached = Usage(1_000_000, 0, cached_input_tokens=400_000, cache_write_tokens=100_000)
    assert Price(1.0, 2.0, cached_input=0.1, cache_write=1.25).cost(cached) == pytest.approx(
        0.5 + 0.04 + 0.125)
    assert Price(1.0, 2.0).cost(cached) == pytest.approx(1.0)
    assert cached + cached == Usage(2_000_000, 0, 800_000, 200_000) == Usage.total([cached] * 2)
    assert lookup_price("claude-sonnet-4-20250514") == lookup_price("claude-sonnet-4")
    assert lookup_price("openai/gpt-4o") == lookup_price("gpt-4o")
    assert lookup_price("no-such-model") is None


def test_scripted_queue_rules_and_failures() -> None:
    m = ScriptedModel("s", replies=["one", RateLimitError("slow")], rules={"capital": "Paris"})
    assert run_sync(m.complete(Request.of("capital of France?"))).text == "Paris"
    assert run_sync(m.complete(Request.of("x"))).text == "one"
    with pytest.raises(RateLimitError):
        run_sync(m.complete(Request.of("x")))
    assert len(m.calls) == 3


def test_completion_carries_cost_from_price() -> None:
    m = ScriptedModel("s", default="a b c", usage=Usage(1000, 3), price=Price(2.0, 4.0))
    c = run_sync(m.complete(Request.of("q")))
    assert c.cost_usd == pytest.approx((1000 * 2 + 3 * 4) / 1e6)
    assert c.trace is not None and c.trace.cost_usd == c.cost_usd


async def test_streaming_deltas_then_completion() -> None:
    m = ScriptedModel("s", default="the quick fox")
    events = [e async for e in m.stream(Request.of("q"))]
    assert isinstance(events[-1], Completion)
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == events[-1].text == "the quick fox"


async def test_stream_or_complete_falls_back_for_models_without_streaming() -> None:
    class Plain(Model):
        async def complete(self, request: Request) -> Completion:
            return Completion("whole", self.name)

    m = Plain("p")
    with pytest.raises(StreamingNotSupported, match="Plain"):
        m.stream(Request.of("q"))
    events = [e async for e in stream_or_complete(m, Request.of("q"))]
    assert events[0] == TextDelta("whole", "p")


async def test_deadline_propagates_through_call() -> None:
    slow = ScriptedModel("slow", default="x", latency_s=1.0)
    with context.scope(deadline_s=0.05), pytest.raises(DeadlineExceeded, match="slow"):
        await call(slow, Request.of("q"))


async def test_scope_only_tightens_deadline() -> None:
    with context.scope(deadline_s=0.1):
        outer = context.current().deadline
        with context.scope(deadline_s=10):
            assert context.current().deadline == outer
    assert context.current().deadline is None


def test_run_sync_inside_a_running_loop() -> None:
    async def inner() -> str:
        m = ScriptedModel("s", default="ok")
        return run_sync(m.complete(Request.of("q"))).text

    assert asyncio.run(inner()) == "ok"


def test_cancelling_a_scope_does_not_cancel_its_parent() -> None:
    from chorus.core.errors import Cancelled

    with context.scope() as outer:
        with context.scope() as inner:
            outer_flag_before = outer.is_cancelled
            inner.cancel()
            with pytest.raises(Cancelled):
                context.check()
        assert not outer_flag_before and not outer.is_cancelled
        context.check()
        with context.scope() as inner2:
            outer.cancel()
            assert inner2.is_cancelled
    context.check()


def test_run_sync_nests_under_running_loops() -> None:
    """A sync function model that calls run_sync, called through run_sync from a running
    loop, twice over: each level gets its own loop and thread, none waits on another."""
    import asyncio
    import threading

    from chorus.providers import FunctionModel

    leaf = ScriptedModel("leaf", default="deep")
    middle = FunctionModel("middle", lambda r: run_sync(leaf.complete(r)).text.upper(),
                           thread=False)
    top = FunctionModel("top", lambda r: run_sync(middle.complete(r)).text + "!", thread=False)

    async def outer() -> str:
        return run_sync(top.complete(Request.of("q"))).text

    got: list[str] = []
    t = threading.Thread(target=lambda: got.append(asyncio.run(outer())), daemon=True)
    t.start()
    t.join(20)
    assert got == ["DEEP!"]
