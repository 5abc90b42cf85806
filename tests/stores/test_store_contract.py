"""The Store contract, run over memory, SQLite and a real Redis."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from chorus.core.errors import StoreUnavailable
from chorus.stores import SQLiteStore, Store


async def test_get_set_delete(store: Store) -> None:
    assert await store.get("a") is None
    await store.set("a", b"\x00one")
    assert await store.get("a") == b"\x00one"
    await store.set("a", b"two")
    assert await store.get("a") == b"two"
    await store.delete("a")
    assert await store.get("a") is None
    await store.delete("never-there")


async def test_ttl_expires(store: Store) -> None:
    await store.set("short", b"x", ttl_s=0.15)
    await store.set("long", b"y", ttl_s=30)
    assert await store.get("short") == b"x"
    await asyncio.sleep(0.3)
    assert await store.get("short") is None
    assert await store.get("long") == b"y"
    assert await store.scan("short") == []


async def test_incr_adds_and_sets_ttl_only_on_create(store: Store) -> None:
    assert await store.incr("n", 2.5) == 2.5
    assert await store.incr("n", -1) == 1.5
    assert float(await store.get("n") or b"nan") == 1.5
    assert await store.incr("t", 1, ttl_s=0.2) == 1
    assert await store.incr("t", 1, ttl_s=60) == 2  # a later ttl does not extend the first
    await asyncio.sleep(0.35)
    assert await store.get("t") is None
    assert await store.incr("t", 1) == 1


async def test_reserve_checks_then_adds(store: Store) -> None:
    assert await store.reserve("b", 3, limit=5) == (True, 3)
    assert await store.reserve("b", 3, limit=5) == (False, 3)
    assert await store.reserve("b", 2, limit=5) == (True, 5)
    assert await store.reserve("b", 0.01, limit=5) == (False, 5)


async def test_reserve_is_atomic_under_concurrency(store: Store) -> None:
    results = await asyncio.gather(*(store.reserve("budget", 1, limit=50) for _ in range(200)))
    granted = [total for ok, total in results if ok]
    assert len(granted) == 50
    assert sorted(granted) == [float(i) for i in range(1, 51)]
    assert float(await store.get("budget") or b"0") == 50


async def test_reserve_ttl_applies_when_created(store: Store) -> None:
    assert (await store.reserve("w", 1, limit=2, ttl_s=0.2))[0]
    await asyncio.sleep(0.35)
    assert await store.reserve("w", 2, limit=2) == (True, 2)


async def test_take_tokens_is_a_token_bucket(store: Store) -> None:
    # Full bucket of 3: three takes succeed, the fourth must wait about 1 / rate.
    assert [await store.take_tokens("bk", 1, rate_per_s=10, capacity=3) for _ in range(3)] == [
        0.0, 0.0, 0.0]
    wait = await store.take_tokens("bk", 1, rate_per_s=10, capacity=3)
    assert 0.0 < wait <= 0.1 + 1e-6
    await asyncio.sleep(wait + 0.02)
    assert await store.take_tokens("bk", 1, rate_per_s=10, capacity=3) == 0.0
    # Never possible: more than the capacity.
    assert await store.take_tokens("bk", 5, rate_per_s=10, capacity=3) == math.inf


async def test_take_tokens_concurrent_never_overdraws(store: Store) -> None:
    waits = await asyncio.gather(
        *(store.take_tokens("burst", 1, rate_per_s=0.001, capacity=20) for _ in range(100)))
    assert sum(1 for w in waits if w == 0.0) == 20


async def test_scan_lists_live_keys_by_prefix(store: Store) -> None:
    await store.set("p:a", b"1")
    await store.set("p:b", b"2")
    await store.incr("p:c", 1)
    await store.set("q:a", b"3")
    await store.set("p%_*[x]", b"4")  # glob / LIKE characters are taken literally
    assert await store.scan("p:") == ["p:a", "p:b", "p:c"]
    assert await store.scan("p%_*[") == ["p%_*[x]"]
    assert await store.scan("zz") == []


async def test_sqlite_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "keep.db"
    first = SQLiteStore(path)
    await first.set("k", b"v")
    await first.incr("n", 4)
    await first.set("gone", b"x", ttl_s=0.05)
    await first.aclose()
    await asyncio.sleep(0.1)
    second = SQLiteStore(path)
    assert await second.get("k") == b"v"
    assert await second.incr("n", 1) == 5
    assert await second.get("gone") is None
    await second.aclose()


async def test_sqlite_unusable_path_is_store_unavailable(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    bad = SQLiteStore(tmp_path / "dir.db")
    with pytest.raises(StoreUnavailable, match="SQLite store at"):
        await bad.ping()
    await bad.aclose()
