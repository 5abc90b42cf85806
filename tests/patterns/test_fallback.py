"""Fallback: error types, propagation, context-length routing, cooldowns."""

from __future__ import annotations

import asyncio

import pytest

from chorus.config import Config
from chorus.core.errors import (
    AllModelsFailed,
    AuthenticationError,
    BadRequestError,
    ConfigError,
    ContextLengthError,
    DeadlineExceeded,
    MalformedResponse,
    ProviderConnectionError,
    ProviderTimeout,
    RateLimitError,
    ServerError,
)
from chorus.core.types import Request
from chorus.patterns.fallback import (
    COOLDOWNS,
    DEFAULT_ON,
    ERROR_TYPES,
    Cooldown,
    Fallback,
    MemoryCooldowns,
    category,
    cooldown_for,
    fits,
    parse_on,
    plan,
)
from chorus.providers.scripted import ScriptedModel

Q = Request.of("Summarise this.")


def failing(name: str, kind: str, **kw: object) -> ScriptedModel:
    return ScriptedModel(name, fail_with=kind, fail_times=-1, **kw)  # type: ignore[arg-type]


# -- decisions, no event loop ------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "name"),
    [
        (ProviderTimeout("t"), "timeout"),
        (RateLimitError("r"), "rate_limit"),
        (ServerError("s"), "server_error"),
        (ProviderConnectionError("c"), "connection"),
        (MalformedResponse("m"), "malformed"),
        (ContextLengthError("l"), "context_length"),
        (BadRequestError("b"), None),
        (AuthenticationError("a"), None),
        (DeadlineExceeded("d"), None),
        (ValueError("v"), None),
    ],
)
def test_category(error: BaseException, name: str | None) -> None:
    assert category(error) == name


def test_parse_on() -> None:
    assert parse_on(None) == DEFAULT_ON == set(ERROR_TYPES)
    assert parse_on(["timeout"]) == {"timeout"}
    with pytest.raises(ValueError, match="unknown error type.*auth"):
        parse_on(["auth"])


def test_cooldown_for() -> None:
    assert cooldown_for(ServerError("s"), 5) == 5
    assert cooldown_for(ContextLengthError("l"), 5) == 0  # the next prompt may fit
    assert cooldown_for(RateLimitError("r", retry_after=30), 5) == 30
    assert cooldown_for(RateLimitError("r", retry_after=1), 5) == 5
    assert cooldown_for(RateLimitError("r", retry_after=30), 0) == 0  # cooldowns are off


@pytest.mark.parametrize(
    ("until", "order", "skipped"),
    [
        ({}, [0, 1, 2], []),
        ({"b": 110.0}, [0, 2], [1]),
        ({"b": 100.0}, [0, 1, 2], []),  # expired exactly now
        ({"a": 130.0, "b": 120.0, "c": 125.0}, [1], [0, 2]),  # all cooling: soonest end
    ],
)
def test_plan(until: dict[str, float], order: list[int], skipped: list[int]) -> None:
    assert plan(["a", "b", "c"], until, 100.0) == (order, skipped)


def test_fits() -> None:
    assert fits(8192, 4096)
    assert not fits(4096, 4096)
    assert not fits(2048, 4096)
    assert fits(None, 4096)
    assert fits(2048, None)


def test_memory_cooldowns() -> None:
    store = MemoryCooldowns()
    assert store.get("a") is None
    store.put("a", Cooldown(5.0, "timeout"))
    assert store.get("a") == Cooldown(5.0, "timeout")
    store.clear("a")
    store.clear("a")
    assert store.get("a") is None


# -- moving on ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(ERROR_TYPES))
async def test_moves_on_for_each_configured_type(kind: str) -> None:
    first = failing("first", kind)
    second = ScriptedModel("second", default="ok")
    fb = Fallback("fb", [first, second], on=[kind], cooldowns=MemoryCooldowns())
    out = await fb.complete(Q)
    assert out.text == "ok"
    assert out.model == "second"
    assert out.trace is not None
    attempts = out.trace.attributes["attempts"]
    assert attempts[0]["model"] == "first" and attempts[0]["type"] == kind
    assert attempts[1] == {"model": "second", "ok": True}
    assert out.trace.attributes["answered"] == "second"
    assert out.trace.children[-1].error is not None  # the failed attempt's span is kept


async def test_default_on_covers_the_retryable_errors_and_context_length() -> None:
    kids = [failing(k, k) for k in sorted(ERROR_TYPES)] + [ScriptedModel("last", default="ok")]
    out = await Fallback("fb", kids, cooldowns=MemoryCooldowns()).complete(Q)
    assert out.model == "last"


@pytest.mark.parametrize("kind", ["server_error", "auth", "bad_request"])
async def test_errors_not_listed_propagate_at_once(kind: str) -> None:
    first = failing("first", kind)
    second = ScriptedModel("second", default="ok")
    fb = Fallback("fb", [first, second], on=["rate_limit"], cooldowns=MemoryCooldowns())
    with pytest.raises((ServerError, AuthenticationError, BadRequestError)):
        await fb.complete(Q)
    assert second.calls == []


async def test_all_failing_carries_each_childs_error() -> None:
    a, b = failing("a", "timeout"), failing("b", "server_error")
    with pytest.raises(AllModelsFailed) as info:
        await Fallback("fb", [a, b], cooldowns=MemoryCooldowns()).complete(Q)
    assert isinstance(info.value.errors["a"], ProviderTimeout)
    assert isinstance(info.value.errors["b"], ServerError)


async def test_attempt_timeout_counts_as_timeout() -> None:
    slow = ScriptedModel("slow", default="late", latency_s=1.0)
    fast = ScriptedModel("fast", default="ok")
    fb = Fallback("fb", [slow, fast], on=["timeout"], timeout_s=0.05, cooldowns=MemoryCooldowns())
    out = await fb.complete(Q)
    assert out.model == "fast"
    assert out.trace is not None
    assert "within 0.05s" in out.trace.attributes["attempts"][0]["error"]


# -- context length ----------------------------------------------------------------------


async def test_context_length_goes_to_a_larger_window() -> None:
    store = MemoryCooldowns()
    small = failing("small", "context_length", context_window=4096)
    smaller = ScriptedModel("smaller", default="no", context_window=2048)
    same = ScriptedModel("same", default="no", context_window=4096)
    large = ScriptedModel("large", default="fits", context_window=32768)
    fb = Fallback("fb", [small, smaller, same, large], cooldowns=store)
    out = await fb.complete(Q)
    assert out.text == "fits"
    assert smaller.calls == [] and same.calls == []
    assert out.trace is not None
    skipped = out.trace.attributes["skipped"]
    assert [s["model"] for s in skipped] == ["smaller", "same"]
    assert "not larger than 4096" in skipped[0]["reason"]
    assert store.get("small") is None  # a too-long prompt is no reason to cool down


async def test_context_length_with_unknown_windows_tries_the_next() -> None:
    small = failing("small", "context_length")
    other = ScriptedModel("other", default="ok")
    out = await Fallback("fb", [small, other], cooldowns=MemoryCooldowns()).complete(Q)
    assert out.model == "other"


# -- cooldowns ---------------------------------------------------------------------------


async def test_cooldown_skips_then_expires() -> None:
    store = MemoryCooldowns()
    flaky = ScriptedModel("flaky", default="primary", fail_with="server_error", fail_times=1)
    backup = ScriptedModel("backup", default="backup")
    fb = Fallback("fb", [flaky, backup], cooldown_s=0.2, cooldowns=store)

    assert (await fb.complete(Q)).text == "backup"
    second = await fb.complete(Q)
    assert second.text == "backup"
    assert len(flaky.calls) == 1  # skipped while cooling down
    assert second.trace is not None
    (skip,) = second.trace.attributes["skipped"]
    assert skip["model"] == "flaky" and "after server_error" in skip["reason"]

    await asyncio.sleep(0.25)
    third = await fb.complete(Q)
    assert third.text == "primary"
    assert store.get("flaky") is None  # cleared by the success


async def test_everyone_cooling_down_tries_the_soonest() -> None:
    store = MemoryCooldowns()
    a = failing("a", "server_error")
    b = ScriptedModel("b", default="b is back", fail_with="rate_limit", fail_times=1)
    fb = Fallback("fb", [a, b], cooldown_s={"a": 30, "b": 10}, cooldowns=store)
    with pytest.raises(AllModelsFailed):
        await fb.complete(Q)
    out = await fb.complete(Q)
    assert out.text == "b is back"
    assert len(a.calls) == 1
    assert out.trace is not None
    assert [s["model"] for s in out.trace.attributes["skipped"]] == ["a"]


async def test_everyone_cooling_and_failing_reports_the_skipped_too() -> None:
    store = MemoryCooldowns()
    a, b = failing("a", "server_error"), failing("b", "timeout")
    fb = Fallback("fb", [a, b], cooldown_s=30, cooldowns=store)
    with pytest.raises(AllModelsFailed):
        await fb.complete(Q)
    with pytest.raises(AllModelsFailed) as info:
        await fb.complete(Q)
    assert "cooling down" in str(info.value.errors["b"])  # a ends first: a was tried
    assert isinstance(info.value.errors["a"], ServerError)


async def test_rate_limit_retry_after_sets_the_cooldown() -> None:
    now = [1000.0]
    store = MemoryCooldowns()
    limited = ScriptedModel("limited", replies=[RateLimitError("slow", retry_after=60)])
    fb = Fallback("fb", [limited, ScriptedModel("b", default="ok")], cooldown_s=5,
                  cooldowns=store, clock=lambda: now[0])
    await fb.complete(Q)
    assert store.get("limited") == Cooldown(1060.0, "rate_limit")


async def test_default_store_is_shared_in_process() -> None:
    name = "test_fallback_shared_store_model"
    try:
        one = Fallback("one", [failing(name, "server_error"), ScriptedModel("x", default="x")])
        await one.complete(Q)
        other = failing(name, "server_error")
        two = Fallback("two", [other, ScriptedModel("y", default="y")])
        assert (await two.complete(Q)).text == "y"
        assert other.calls == []
    finally:
        COOLDOWNS.clear(name)


def test_bad_cooldowns_are_rejected() -> None:
    a = ScriptedModel("a", default="a")
    with pytest.raises(ValueError, match="nope"):
        Fallback("fb", [a], cooldown_s={"nope": 1})
    with pytest.raises(ValueError, match=">= 0"):
        Fallback("fb", [a], cooldown_s=-1)


# -- YAML --------------------------------------------------------------------------------

YAML = """
models:
  a: {provider: scripted, fail_with: rate_limit, fail_times: 100, context_window: 4096}
  b: {provider: scripted, default: from b, context_window: 8192}
systems:
  fb:
    kind: fallback
    models: [a, b]
    on: [rate_limit, timeout]
    cooldown_s: {a: 1.5}
    timeout_s: 20
"""


async def test_yaml_builds_the_same_fallback() -> None:
    fb = Config.from_text(YAML).get("fb")
    assert isinstance(fb, Fallback)
    assert fb.on == {"rate_limit", "timeout"}
    assert fb.cooldown_of("a") == 1.5 and fb.cooldown_of("b") == 0
    fb.cooldowns = MemoryCooldowns()
    assert (await fb.complete(Q)).text == "from b"


def test_yaml_unknown_error_type() -> None:
    with pytest.raises(ConfigError, match=r"systems\.fb\.on"):
        Config.from_text(YAML.replace("on: [rate_limit, timeout]", "on: [gremlins]")).get("fb")
