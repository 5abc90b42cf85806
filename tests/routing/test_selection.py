from __future__ import annotations

import pytest

from chorus.core.pricing import Price
from chorus.core.types import Request
from chorus.patterns.pipeline import Pipeline
from chorus.providers.scripted import ScriptedModel
from chorus.routing import LatencyStats, capabilities_of, price_of, select
from chorus.routing.selection import estimate_tokens


def m(name: str, caps: tuple[str, ...] = (), price: Price | None = None) -> ScriptedModel:
    return ScriptedModel(name, default="ok", capabilities=caps, price=price)


CHEAP = m("cheap", ("chat",), Price(0.1, 0.4))
PRICEY = m("pricey", ("chat", "code"), Price(3.0, 15.0))
CODER = m("coder", ("code",), Price(0.2, 0.2))


def test_first_with_required_capability() -> None:
    assert select([CHEAP, PRICEY], "first")[0] is CHEAP
    chosen, why = select([CHEAP, PRICEY, CODER], "first", require=["code"])
    assert chosen is PRICEY
    assert why == "pricey: first candidate with ['code']"


def test_only_one_capable_candidate() -> None:
    chosen, why = select([CHEAP, PRICEY], "cheapest", require=["chat", "code"])
    assert chosen is PRICEY and "only candidate" in why


def test_no_capable_candidate_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"no candidate \(cheap, coder\) has all of \['vision'\]"):
        select([CHEAP, CODER], require=["vision"])


def test_cheapest_uses_the_estimated_cost() -> None:
    chosen, why = select([PRICEY, CHEAP, CODER], "cheapest", tokens=(1000, 100))
    assert chosen is CHEAP  # 0.1*1000+0.4*100 = 140 < coder 220 < pricey
    assert why.startswith("cheap: cheapest, est. $0.000140 (")
    # Long prompts and short answers favour the model with the cheaper input.
    assert select([CHEAP, CODER], "cheapest", tokens=(10, 10_000))[0] is CODER
    assert select([CHEAP, PRICEY, CODER], "cheapest", require=["chat"])[0] is CHEAP


def test_cheapest_keeps_order_on_ties() -> None:
    a, b = m("a"), m("b")
    assert select([a, b], "cheapest")[0] is a
    assert select([b, a], "cheapest")[0] is b


def test_fastest_measures_each_candidate_once_then_picks_the_lowest_average() -> None:
    a, b = m("a"), m("b")
    stats = LatencyStats(alpha=0.5)
    chosen, why = select([a, b], "fastest", stats=stats)
    assert chosen is a and why == "a: not measured yet"
    stats.record("a", 0.4)
    assert select([a, b], "fastest", stats=stats)[0] is b
    stats.record("b", 0.2)
    chosen, why = select([a, b], "fastest", stats=stats)
    assert chosen is b and why == "b: fastest, avg 0.200s (a 0.400s)"
    stats.record("b", 1.0)  # 0.2 + 0.5 * (1.0 - 0.2) = 0.6
    assert stats.latency("b") == pytest.approx(0.6)
    assert select([a, b], "fastest", stats=stats)[0] is a


def test_errors_count_as_slow_calls() -> None:
    stats = LatencyStats(alpha=1.0, error_penalty_s=5.0)
    stats.record("a", 0.1, error=True)
    assert stats.latency("a") == pytest.approx(5.1)
    assert stats.errors == {"a": 1} and stats.calls == {"a": 1}
    assert stats.latency("unknown") is None
    with pytest.raises(ValueError):
        LatencyStats(alpha=0)


def test_fastest_needs_stats_and_unknown_strategy_fails() -> None:
    with pytest.raises(ValueError, match="latency stats"):
        select([CHEAP, CODER], "fastest")
    with pytest.raises(ValueError, match="select must be one of"):
        select([CHEAP, CODER], "random")  # type: ignore[arg-type]


def test_composites_share_capabilities_and_sum_prices() -> None:
    p = Pipeline("p", [CHEAP, PRICEY])
    assert capabilities_of(p) == frozenset({"chat"})
    assert price_of(p) == Price(3.1, 15.4)
    assert price_of(Pipeline("free", [m("x")])) == Price()


def test_estimate_tokens() -> None:
    assert estimate_tokens(Request.of("x" * 400, max_tokens=50)) == (100, 50)
    assert estimate_tokens(Request.of("hi")) == (1, 256)
