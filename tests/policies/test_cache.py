"""The exact cache: keys, hits, sampling, TTL, the size cap, streams, the trace."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chorus.config.builder import Config
from chorus.core.model import Model
from chorus.core.pricing import Price
from chorus.core.types import Completion, Message, Request, TextDelta, Usage
from chorus.policies._cachekey import (
    decode_entry,
    deterministic,
    encode_entry,
    model_identity,
    request_key,
    span_from_dict,
)
from chorus.policies.cache import Cache, replay_pieces
from chorus.providers.scripted import ScriptedModel
from chorus.stores import MemoryStore, RedisStore, Store
from tests.stores._backends import BACKENDS, open_backend

MINI = Price(0.15, 0.60)  # gpt-4o-mini, USD per million tokens


def leaf(name: str = "mini", **kw: object) -> ScriptedModel:
    kw.setdefault("default", "the answer is forty two")
    return ScriptedModel(name, price=MINI, **kw)  # type: ignore[arg-type]


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    backend = open_backend(request.param, tmp_path, request)
    yield backend
    await backend.aclose()


# -- keys (no I/O) -----------------------------------------------------------------------


def test_key_changes_with_everything_that_changes_the_answer() -> None:
    ident = model_identity(leaf())
    base = Request.of("hi")
    k = request_key(ident, base)
    assert request_key(ident, Request.of("hi")) == k
    variants = [
        Request.of("hi!"),
        Request.of("hi", system="be brief"),
        Request.of("hi", max_tokens=5),
        Request.of("hi", temperature=0),
        Request.of("hi", stop=["\n"]),
        Request.of("hi", seed=1),
        Request.of("hi", response_format={"type": "object"}),
        Request((Message("assistant", "hello"), Message("user", "hi"))),
    ]
    keys = {request_key(ident, r) for r in variants}
    assert len(keys) == len(variants) and k not in keys
    # metadata (a trace id, a tenant) does not change the answer
    assert request_key(ident, Request(base.messages, base.params, {"trace": "x"})) == k


def test_key_changes_with_the_model() -> None:
    r = Request.of("hi")
    keys = {request_key(model_identity(m), r) for m in [
        leaf("a"), leaf("b"), leaf("a", model_id="gpt-4o"),
        ScriptedModel("a", default="x", params=Request.of("", temperature=0).params),
    ]}
    assert len(keys) == 4


def test_deterministic_reads_the_request_then_the_model_default() -> None:
    m = leaf()
    assert deterministic(m, Request.of("x"))
    assert deterministic(m, Request.of("x", temperature=0))
    assert not deterministic(m, Request.of("x", temperature=0.7))
    warm = leaf(params=Request.of("", temperature=0.8).params)
    assert not deterministic(warm, Request.of("x"))
    assert deterministic(warm, Request.of("x", temperature=0))


def test_entry_round_trip_keeps_the_trace() -> None:
    c = asyncio.run(leaf().complete(Request.of("one two")))
    back, doc = decode_entry(encode_entry(c, 123.0))
    assert back.text == c.text and back.usage == c.usage and back.cost_usd == c.cost_usd
    assert back.trace is not None and c.trace is not None
    assert back.trace.to_dict() == c.trace.to_dict()
    assert span_from_dict(c.trace.to_dict()).to_dict() == c.trace.to_dict()
    assert doc["created"] == 123.0
    with pytest.raises(ValueError, match="not a cache entry"):
        decode_entry(b"{}")


def test_replay_pieces_rebuild_the_text() -> None:
    for text in ["hello world", " a  b ", "x", "", "one\ntwo  "]:
        assert "".join(replay_pieces(text)) == text
    assert replay_pieces("hello big world") == ["hello", " big", " world"]


# -- behaviour over every backend ------------------------------------------------------------


async def test_miss_then_hit_costs_nothing(store: Store) -> None:
    inner = leaf()
    cache = Cache("c", inner, store)
    first = await cache.complete(Request.of("what is six times seven"))
    assert first.cost_usd > 0 and first.model == "mini"
    assert first.trace is not None and first.trace.kind == "cache"
    assert first.trace.attributes["hit"] is False and first.trace.attributes["stored"] is True
    assert [c.kind for c in first.trace.children] == ["model"]

    second = await cache.complete(Request.of("what is six times seven"))
    assert second.text == first.text
    assert second.cost_usd == 0.0 and second.usage == Usage()
    assert second.model == "mini"  # the original leaf
    assert second.trace is not None
    attrs = second.trace.attributes
    assert attrs["hit"] is True and attrs["saved_usd"] == pytest.approx(first.cost_usd)
    assert attrs["saved_tokens"] == first.usage.total_tokens
    assert second.trace.children == [] and second.trace.cost_usd == 0.0
    assert len(inner.calls) == 1


async def test_params_change_the_key(store: Store) -> None:
    inner = leaf()
    cache = Cache("c", inner, store)
    for r in [Request.of("q"), Request.of("q", max_tokens=5),
              Request.of("q", response_format={"type": "object"})]:
        assert (await cache.complete(r)).trace.attributes["hit"] is False  # type: ignore[union-attr]
    assert len(inner.calls) == 3
    await cache.complete(Request.of("q", max_tokens=5))
    assert len(inner.calls) == 3


async def test_sampling_is_not_cached_unless_asked(store: Store) -> None:
    inner = leaf()
    cache = Cache("c", inner, store)
    for _ in range(2):
        out = await cache.complete(Request.of("q", temperature=0.9))
        assert out.trace is not None and out.trace.attributes["hit"] is False
        assert "sampling" in out.trace.attributes["reason"]
    assert len(inner.calls) == 2
    sampled = Cache("s", leaf(), store, cache_sampling=True)
    await sampled.complete(Request.of("q", temperature=0.9))
    again = await sampled.complete(Request.of("q", temperature=0.9))
    assert again.trace is not None and again.trace.attributes["hit"] is True


async def test_ttl_expires(store: Store) -> None:
    inner = leaf()
    cache = Cache("c", inner, store, ttl_s=0.2)
    await cache.complete(Request.of("q"))
    await cache.complete(Request.of("q"))
    assert len(inner.calls) == 1
    await asyncio.sleep(0.35)
    out = await cache.complete(Request.of("q"))
    assert out.trace is not None and out.trace.attributes["hit"] is False
    assert len(inner.calls) == 2


async def test_size_cap_evicts_the_oldest(store: Store) -> None:
    inner = leaf()
    cache = Cache("c", inner, store, max_entries=2)
    for p in ["one", "two"]:
        await cache.complete(Request.of(p))
    out = await cache.complete(Request.of("three"))
    assert out.trace is not None and out.trace.attributes["evicted"] == 1
    assert len(await store.scan(cache.prefix)) == 2
    hits = {p: (await cache.complete(Request.of(p))).trace.attributes["hit"]  # type: ignore[union-attr]
            for p in ["three", "two", "one"]}
    assert hits == {"three": True, "two": True, "one": False}


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
async def test_size_cap_holds_across_processes_sharing_a_store(
        kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Two caches on one shared store (as two processes would be, each with its own
    connection) hold one cap together, and keep the newest entries."""
    first, second = (open_backend(kind, tmp_path, request) for _ in range(2))
    if isinstance(second, RedisStore) and isinstance(first, RedisStore):
        second.namespace = first.namespace  # the same keys, from a second client
    try:
        caches = [Cache("shared", leaf(), st, max_entries=20) for st in (first, second)]
        for i in range(70):
            await caches[i % 2].complete(Request.of(f"question {i}"))
        kept = await first.scan(caches[0].prefix)
        # The cap less its slack (a tenth) after a trim, never more than the cap.
        assert 18 <= len(kept) <= 20
        newest = {caches[0].key_for(Request.of(f"question {i}")) for i in range(52, 70)}
        assert newest <= set(kept)
        hit = await caches[1].complete(Request.of("question 69"))
        assert hit.trace is not None and hit.trace.attributes["hit"] is True
    finally:
        await first.aclose()
        await second.aclose()


async def test_stream_is_cached_and_replayed(store: Store) -> None:
    inner = leaf(default="streamed words come back")
    cache = Cache("c", inner, store)

    async def run(req: Request) -> tuple[list[str], Completion]:
        pieces: list[str] = []
        final = None
        async for ev in cache.stream(req):
            if isinstance(ev, TextDelta):
                pieces.append(ev.text)
            else:
                final = ev
        assert final is not None
        return pieces, final

    live, first = await run(Request.of("tell me"))
    assert "".join(live) == "streamed words come back" and len(live) == 4
    assert first.trace is not None and first.trace.attributes["hit"] is False
    replay, second = await run(Request.of("tell me"))
    assert replay == live
    assert second.cost_usd == 0 and second.trace is not None
    assert second.trace.attributes["hit"] is True
    assert (await cache.complete(Request.of("tell me"))).cost_usd == 0
    assert len(inner.calls) == 1


async def test_per_tenant_keeps_tenants_apart(store: Store) -> None:
    inner = leaf()
    cache = Cache("c", inner, store, per_tenant=True)
    a = Request(Request.of("q").messages, metadata={"tenant": "a"})
    b = Request(Request.of("q").messages, metadata={"tenant": "b"})
    await cache.complete(a)
    await cache.complete(b)
    await cache.complete(a)
    assert len(inner.calls) == 2


async def test_store_survives_a_new_cache_object(tmp_path: Path) -> None:
    from chorus.stores import SQLiteStore

    path = tmp_path / "c.db"
    s1 = SQLiteStore(path)
    await Cache("c", leaf(), s1).complete(Request.of("q"))
    await s1.aclose()
    s2 = SQLiteStore(path)
    inner = leaf()
    out = await Cache("c", inner, s2).complete(Request.of("q"))
    assert out.cost_usd == 0 and inner.calls == []
    await s2.aclose()


async def test_a_dead_store_fails_open() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = RedisStore(f"redis://127.0.0.1:{port}/0", timeout_s=1)
    inner = leaf()
    out = await Cache("c", inner, store).complete(Request.of("q"))
    assert out.text == "the answer is forty two" and len(inner.calls) == 1
    assert out.trace is not None and "cannot reach Redis" in out.trace.attributes["store_error"]
    await store.aclose()


async def test_an_error_is_not_cached() -> None:
    inner = leaf(fail_with="server_error", fail_times=1)
    cache = Cache("c", inner, MemoryStore())
    with pytest.raises(Exception, match="scripted server_error"):
        await cache.complete(Request.of("q"))
    out = await cache.complete(Request.of("q"))
    assert out.cost_usd > 0 and len(inner.calls) == 2


def test_yaml_builds_a_cache_around_a_system(tmp_path: Path) -> None:
    cfg = Config.from_text(f"""
stores:
  disk: {{kind: sqlite, path: "{tmp_path / 'y.db'}"}}
models:
  m: {{provider: scripted, default: hi, price: {{input: 0.15, output: 0.6}}}}
systems:
  cached:
    kind: cache
    store: disk
    ttl_s: 60
    max_entries: 100
    inner: {{kind: retry, inner: m, attempts: 2}}
""")
    cache = cfg.get("cached")
    assert isinstance(cache, Cache) and cache.store.name == "sqlite"
    assert cache.ttl_s == 60 and cache.max_entries == 100
    inner: Model = cache.children()[0]
    assert inner.kind == "retry" and inner.children()[0].name == "m"
    with pytest.raises(Exception, match="unknown key 'ttl'"):
        Config.from_text("""
models: {m: {provider: scripted, default: hi}}
systems: {c: {kind: cache, inner: m, ttl: 5}}
""").get("c")
