"""Live statistics: window arithmetic as plain functions, the store-backed LatencyStore,
and a router's fastest-candidate selection reading it."""

from __future__ import annotations

import pytest

from chorus.core.errors import StoreUnavailable
from chorus.policies.stats import ModelStats, StoreStats, bucket_of, summarize
from chorus.providers.scripted import ScriptedModel
from chorus.routing.selection import LatencyStore, select
from chorus.stores import MemoryStore
from tests.policies._faulty import FlakyStore


class Clock:
    def __init__(self) -> None:
        self.now = 6000.0

    def __call__(self) -> float:
        return self.now


def test_window_arithmetic() -> None:
    assert bucket_of(119.9, 60) == 1 and bucket_of(120.0, 60) == 2
    s = summarize([{"n": 2, "lat": 1.0, "cost": 0.02}, {}, {"n": 2, "err": 1, "lat": 3.0}])
    assert s == ModelStats(4, 1, 4.0, 0.02)
    assert s.latency() == 1.0
    assert s.latency(error_penalty_s=4.0) == 2.0  # the failed call counts 4 s more
    assert ModelStats().latency() is None
    assert ModelStats().add(0.5, True, 0.1) == ModelStats(1, 1, 0.5, 0.1)


async def test_moving_average_over_the_window() -> None:
    clock = Clock()
    stats = StoreStats(MemoryStore(), bucket_s=10, buckets=3, error_penalty_s=0, clock=clock)
    await stats.arecord("m", 1.0, cost_usd=0.01)
    await stats.arecord("m", 3.0, error=True, cost_usd=0.03)
    got = await stats.read("m")
    assert (got.calls, got.errors, got.latency()) == (2, 1, 2.0)
    assert got.cost_sum == pytest.approx(0.04)
    clock.now += 20  # still inside the 30 s window
    await stats.arecord("m", 5.0)
    assert (await stats.read("m")).latency() == 3.0
    clock.now += 10  # the first bucket leaves the window
    assert (await stats.read("m")).latency() == 5.0
    clock.now += 30
    assert (await stats.read("m")).latency() is None


async def test_sync_interface_is_shared_through_the_store() -> None:
    store = MemoryStore()
    here: LatencyStore = StoreStats(store, error_penalty_s=5.0)  # the router's interface
    assert isinstance(here, StoreStats)
    here.record("fast", 0.1)
    here.record("slow", 0.3, True)
    # Known locally at once, written to the store in the background.
    assert here.latency("fast") == pytest.approx(0.1)
    await here.flush()
    there = StoreStats(store, error_penalty_s=5.0)  # e.g. another process
    assert there.latency("slow") is None  # nothing read yet: a refresh starts
    await there.flush()
    assert there.latency("slow") == pytest.approx(5.3)


async def test_router_selection_reads_store_stats() -> None:
    store = MemoryStore()
    fast, slow = ScriptedModel("fast", default="x"), ScriptedModel("slow", default="x")
    writer = StoreStats(store)
    for latency in (0.2, 0.4):
        writer.record("slow", latency)
        writer.record("fast", latency / 10)
    await writer.flush()
    reader = StoreStats(store)
    reader.latency("fast"), reader.latency("slow")
    await reader.flush()
    chosen, why = select([slow, fast], "fastest", stats=reader)
    assert chosen is fast and "avg 0.030s" in why


async def test_a_failing_store_drops_samples_without_failing_the_call() -> None:
    stats = StoreStats(FlakyStore())
    stats.record("m", 0.1)
    stats.latency("other")
    await stats.flush()
    assert stats.dropped == 2
    with pytest.raises(StoreUnavailable):
        await stats.read("m")
