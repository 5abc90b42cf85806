"""Circuit breaker: the state machine as plain functions, then the wrapper's transitions
(closed -> open -> half-open -> closed / open again), waiting, sharing and store faults."""

from __future__ import annotations

import asyncio

import pytest

from chorus.config.builder import Config
from chorus.core.context import scope
from chorus.core.errors import (
    AllModelsFailed,
    BadRequestError,
    ServerError,
    StoreUnavailable,
)
from chorus.core.types import Request
from chorus.patterns.fallback import Fallback
from chorus.policies.breaker import (
    Admission,
    Breaker,
    BreakerState,
    admit,
    after_failure,
    trips,
)
from chorus.providers.scripted import ScriptedModel
from chorus.stores import MemoryStore
from tests.policies._faulty import FlakyStore

Q = Request.of("q")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- the state machine ------------------------------------------------------------------------


def test_admit() -> None:
    assert admit(BreakerState(), 5.0, 30) == Admission("call")
    opened = BreakerState("open", 100.0, 5)
    assert admit(opened, 110.0, 30) == Admission("reject", 20.0)
    assert admit(opened, 130.0, 30) == Admission("probe")
    assert admit(BreakerState("half_open", 100.0, 5), 200.0, 30) == Admission("probe")


def test_after_failure() -> None:
    closed = BreakerState()
    assert after_failure(closed, 2, 3, 50.0) == BreakerState("closed", 0.0, 2)
    assert after_failure(closed, 3, 3, 50.0) == BreakerState("open", 50.0, 3)
    # A failed probe opens it again, whatever the count.
    assert after_failure(BreakerState("half_open", 1.0, 3), 0, 3, 60.0).state == "open"


def test_state_round_trips_as_json_and_trips() -> None:
    s = BreakerState("open", 12.5, 4)
    assert BreakerState.loads(s.dumps()) == s
    assert BreakerState.loads(None) == BreakerState()
    assert trips(ServerError("x")) and not trips(BadRequestError("x"))
    assert trips(AllModelsFailed("fb", {"a": ServerError("x")}))


# -- transitions ------------------------------------------------------------------------------


async def test_open_half_open_closed_transitions() -> None:
    clock = Clock()
    # Fails three times, then answers.
    model = ScriptedModel("flaky", fail_with="server_error", fail_times=3, default="ok")
    br = Breaker("br", model, failures=2, window_s=60, cooldown_s=10, clock=clock)
    for _ in range(2):
        with pytest.raises(ServerError, match="scripted server_error"):
            await br.complete(Q)
    assert (await br.status())["state"] == "open"

    with pytest.raises(ServerError, match=r"circuit open \(2 failures within 60s\), "
                       r"retry in 10\.0s") as info:
        await br.complete(Q)
    assert len(model.calls) == 2  # refused without calling the model
    assert info.value.retryable and info.value.model == "flaky"
    assert info.value.trace.attributes["state"] == "open"  # type: ignore[union-attr]

    clock.now += 10
    with pytest.raises(ServerError, match="scripted server_error") as failed_probe:
        await br.complete(Q)  # the half-open probe fails: open again
    assert failed_probe.value.trace.attributes["probe"] is True  # type: ignore[union-attr]
    assert failed_probe.value.trace.attributes["after"] == "open"  # type: ignore[union-attr]
    status = await br.status()
    assert status["state"] == "open" and status["retry_in_s"] == pytest.approx(10)
    with pytest.raises(ServerError, match="circuit open"):
        await br.complete(Q)
    assert len(model.calls) == 3

    clock.now += 10
    answer = await br.complete(Q)  # the probe succeeds: closed
    assert answer.text == "ok"
    assert answer.trace is not None
    assert answer.trace.attributes == {"model": "flaky", "state": "open", "probe": True,
                                       "after": "closed"}
    assert answer.trace.children[0].name == "flaky"
    assert (await br.status())["state"] == "closed"
    await br.complete(Q)
    assert len(model.calls) == 5


async def test_failures_outside_the_window_and_caller_errors_do_not_open() -> None:
    clock = Clock()
    model = ScriptedModel("m", replies=[ServerError("boom"), BadRequestError("bad"),
                                        BadRequestError("bad"), "ok"])
    br = Breaker("br", model, failures=2, window_s=0.2, cooldown_s=10, clock=clock)
    with pytest.raises(ServerError):
        await br.complete(Q)
    for _ in range(2):
        with pytest.raises(BadRequestError):
            await br.complete(Q)  # the caller's fault, not the model's health
    assert (await br.status())["failures"] == 1
    await asyncio.sleep(0.25)  # the failure counter expires with its window
    assert (await br.status())["failures"] == 0


async def test_one_probe_at_a_time() -> None:
    clock = Clock()
    store = MemoryStore()
    model = ScriptedModel("slow", default="ok", latency_s=0.05)
    br = Breaker("br", model, failures=1, cooldown_s=5, store=store, clock=clock)
    await store.set(br.key, BreakerState("open", clock.now - 6, 1).dumps())
    results = await asyncio.gather(*(br.complete(Q) for _ in range(5)), return_exceptions=True)
    assert len(model.calls) == 1
    assert sum(1 for r in results if isinstance(r, ServerError)) == 4
    assert (await br.status())["state"] == "closed"


async def test_wait_for_the_probe_within_the_deadline() -> None:
    model = ScriptedModel("m", default="ok")
    br = Breaker("br", model, failures=1, cooldown_s=0.1, wait=True)
    await br.gate.store.set(br.key, BreakerState("open", br.clock(), 1).dumps())
    with scope(deadline_s=0.03), pytest.raises(ServerError, match="circuit open"):
        await br.complete(Q)  # the cool-down outlasts the deadline: fail at once
    answer = await br.complete(Q)  # waits for the cool-down, then probes
    assert answer.text == "ok" and answer.trace is not None
    assert answer.trace.attributes["waited_s"] >= 0.05
    assert answer.trace.attributes["after"] == "closed"


async def test_state_is_shared_per_model_through_the_store() -> None:
    clock = Clock()
    store = MemoryStore()
    model = ScriptedModel("shared", fail_with="server_error", fail_times=-1)
    a = Breaker("a", model, failures=2, store=store, clock=clock)
    b = Breaker("b", model, failures=2, store=store, clock=clock)
    for br in (a, b):
        with pytest.raises(ServerError, match="scripted"):
            await br.complete(Q)
    with pytest.raises(ServerError, match="circuit open"):
        await a.complete(Q)
    assert len(model.calls) == 2


async def test_fallback_moves_on_from_an_open_breaker() -> None:
    clock = Clock()
    bad = ScriptedModel("bad", fail_with="server_error", fail_times=-1)
    good = ScriptedModel("good", default="fine")
    br = Breaker("br", bad, failures=1, cooldown_s=60, clock=clock)
    fb = Fallback("fb", [br, good], cooldown_s=0)
    assert (await fb.complete(Q)).text == "fine"
    answer = await fb.complete(Q)
    assert answer.text == "fine" and len(bad.calls) == 1
    assert answer.trace is not None
    assert "circuit open" in answer.trace.attributes["attempts"][0]["error"]


async def test_store_faults() -> None:
    model = ScriptedModel("m", default="ok")
    lenient = Breaker("br", model, store=FlakyStore(), on_store_error="open")
    answer = await lenient.complete(Q)
    assert answer.text == "ok" and answer.trace is not None
    assert "read breaker state" in answer.trace.attributes["store_errors"][0]

    strict = Breaker("br", model, store=FlakyStore(), on_store_error="closed")
    with pytest.raises(StoreUnavailable, match="breaker 'br': cannot read breaker state"):
        await strict.complete(Q)
    assert len(model.calls) == 1

    # Recording a failure in a broken store never hides the model's own error.
    failing = ScriptedModel("f", fail_with="server_error", fail_times=-1)
    store = FlakyStore(fail={"incr"})
    with pytest.raises(ServerError, match="scripted server_error") as info:
        await Breaker("br2", failing, store=store, on_store_error="closed").complete(Q)
    assert "record the outcome" in (
        info.value.trace.attributes["store_errors"][0])  # type: ignore[union-attr]


def test_yaml_breaker() -> None:
    cfg = Config.from_text("""
models: {m: {provider: scripted, default: ok}}
systems:
  guarded: {kind: breaker, inner: m, failures: 3, cooldown_s: 5, wait: true}
""")
    br = cfg.get("guarded")
    assert isinstance(br, Breaker)
    assert (br.failures, br.cooldown_s, br.wait) == (3, 5, True)
