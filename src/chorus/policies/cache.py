"""Cache: answer a request from a store when the same one was answered before.

    Cache("cached", model, MemoryStore(), ttl_s=3600, max_entries=10_000)

A hit costs nothing: the Completion comes back with cost 0, usage 0, the lookup's latency
and ``model`` naming the leaf that first answered; its span says ``hit: true`` and
``saved_usd``. Sampling (temperature > 0) is not cached unless ``cache_sampling`` is set.
Streams are cached too: a miss streams from the inner model while collecting, a hit
replays the text as deltas. A store that fails is recorded in the span (``store_error``)
and the request goes to the inner model: a cache outage never fails a request.

The size cap evicts the oldest entries. With the in-process memory store an ordered index
kept here makes it exact. With a store that processes share (SQLite, Redis) the count lives
in the store (``cachemeta:NAMESPACE:entries``), so the cap holds across processes: when a
write takes the count past the cap, the cache lists its entries, deletes the oldest down to
the cap less a tenth of it (so a full cache does not list itself on every write), and
corrects the count. Two processes trimming at once can leave the count a little low, which
the next trim corrects.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from pydantic import Field

from chorus.config.schema import ModelRef, PatternConfig
from chorus.core.compose import Wrapper, combine, replay_pieces
from chorus.core.errors import StoreUnavailable
from chorus.core.model import Model
from chorus.core.registry import BuildContext
from chorus.core.types import ZERO_USAGE, Completion, Request, Span
from chorus.policies._cachekey import (
    decode_entry,
    deterministic,
    encode_entry,
    model_identity,
    request_key,
)
from chorus.stores import MemoryStore, Store

__all__ = ["Cache", "CacheConfig", "CacheOptions", "CachePolicy", "Lookup", "build",
           "replay_pieces", "tenant_of"]


def tenant_of(request: Request) -> str:
    """The tenant a request belongs to (``metadata["tenant"]``), "" when none."""
    tenant = request.metadata.get("tenant")
    return "" if tenant is None else str(tenant)


@dataclass(slots=True)
class Lookup:
    """What a lookup found: the cached answer (or None) and what to record."""

    hit: Completion | None = None
    created: float = 0.0
    attributes: dict[str, Any] = field(default_factory=dict)
    # Whatever the subclass needs to store the answer of a miss (None: do not store).
    token: Any = None


class CachePolicy(Wrapper[Lookup]):
    """What the exact and semantic caches share: the call flow and the hit's report."""

    kind = "cache"
    can_stream = True

    def __init__(self, name: str, inner: Model, store: Store | None, *,
                 ttl_s: float | None, max_entries: int | None, cache_sampling: bool) -> None:
        super().__init__(name, inner)
        if ttl_s is not None and ttl_s <= 0:
            raise ValueError("ttl_s must be > 0")
        if max_entries is not None and max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self.store = store if store is not None else MemoryStore()
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.cache_sampling = cache_sampling
        self.identity = model_identity(inner)

    @abstractmethod
    async def _lookup(self, request: Request) -> Lookup:
        """Find a cached answer for ``request`` (StoreUnavailable: the store failed)."""

    @abstractmethod
    async def _save(self, token: Any, answer: Completion) -> dict[str, Any]:
        """Store the answer of a miss; returns what to add to the span's attributes."""

    # -- the flow ---------------------------------------------------------------------------

    async def _find(self, request: Request) -> Lookup:
        if not (self.cache_sampling or deterministic(self.inner, request)):
            return Lookup(attributes={"hit": False, "stored": False,
                                      "reason": "sampling (temperature > 0) is not cached"})
        try:
            return await self._lookup(request)
        except StoreUnavailable as exc:
            return Lookup(attributes={"hit": False, "stored": False, "store_error": str(exc)})

    async def _keep(self, found: Lookup, answer: Completion) -> dict[str, Any]:
        if found.token is None:
            return {}
        try:
            return {"stored": True, **await self._save(found.token, answer)}
        except StoreUnavailable as exc:
            return {"stored": False, "store_error": str(exc)}

    def _hit(self, found: Lookup, started: float) -> Completion:
        cached = found.hit
        assert cached is not None
        latency = time.perf_counter() - started
        attributes = {
            **found.attributes, "hit": True, "saved_usd": cached.cost_usd,
            "saved_tokens": cached.usage.total_tokens,
            "age_s": round(time.time() - found.created, 3),
        }
        span = Span(kind=self.kind, name=self.name, model=cached.model, usage=ZERO_USAGE,
                    cost_usd=0.0, latency_s=latency, start=time.time() - latency,
                    attributes=attributes)
        return Completion(cached.text, cached.model, ZERO_USAGE, 0.0, latency,
                          cached.finish_reason, span, cached.logprob, cached.tool_calls,
                          cached.logprobs)

    def _miss(self, answer: Completion, started: float, attributes: dict[str, Any]
              ) -> Completion:
        return combine(self, answer.text, started=started, parts=[answer], winner=answer,
                       attributes={"hit": False, **attributes})

    # -- the wrapper's steps (chorus.core.Wrapper) ----------------------------------------

    async def enter(self, request: Request, started: float) -> Lookup:
        return await self._find(request)

    def own_answer(self, state: Lookup, started: float) -> Completion | None:
        """A hit (a stream replays its text as word-sized deltas)."""
        return self._hit(state, started) if state.hit is not None else None

    async def answered(self, state: Lookup, answer: Completion, started: float
                       ) -> Completion:
        """A miss: streamed from the inner model while collecting, then stored."""
        return self._miss(answer, started, {**state.attributes,
                                            **await self._keep(state, answer)})


class Cache(CachePolicy):
    """The exact cache: a hit needs the same model tree, messages and parameters."""

    def __init__(
        self,
        name: str,
        inner: Model,
        store: Store | None = None,
        *,
        ttl_s: float | None = None,
        max_entries: int | None = None,
        cache_sampling: bool = False,
        per_tenant: bool = False,
        namespace: str | None = None,
    ) -> None:
        super().__init__(name, inner, store, ttl_s=ttl_s, max_entries=max_entries,
                         cache_sampling=cache_sampling)
        self.per_tenant = per_tenant
        self.prefix = f"cache:{quote(namespace or name, safe='')}:"
        # entry key -> created (time.time()), oldest first; None until seeded from the store
        self._index: OrderedDict[str, float] | None = None

    def key_for(self, request: Request) -> str:
        """The store key of ``request``."""
        scope = tenant_of(request) if self.per_tenant else ""
        return self.prefix + request_key(self.identity, request, scope=scope)

    async def _lookup(self, request: Request) -> Lookup:
        key = self.key_for(request)
        attributes: dict[str, Any] = {"key": key[len(self.prefix):][:16], "store": self.store.name}
        raw = await self.store.get(key)
        if raw is not None:
            try:
                cached, doc = decode_entry(raw, trace=False)
            except ValueError:
                await self.store.delete(key)
            else:
                return Lookup(cached, float(doc.get("created", 0.0)), attributes, key)
        return Lookup(None, 0.0, attributes, key)

    async def _save(self, token: Any, answer: Completion) -> dict[str, Any]:
        key = str(token)
        now = time.time()
        await self.store.set(key, encode_entry(answer, now), self.ttl_s)
        if self.max_entries is None:
            return {}
        if not isinstance(self.store, MemoryStore):
            return await self._capped_in_store(self.max_entries)
        index = await self._seeded()
        index[key] = now
        index.move_to_end(key)
        evicted = 0
        while len(index) > self.max_entries:
            old, _ = index.popitem(last=False)
            await self.store.delete(old)
            evicted += 1
        return {"evicted": evicted} if evicted else {}

    async def _capped_in_store(self, cap: int) -> dict[str, Any]:
        """Count the new entry in the store; past the cap, trim (see the module docstring).
        Only every ``slack``-th write past the cap trims, so concurrent writers do not all
        list the cache at once, and a trim that died is retried."""
        counter = "cachemeta:" + self.prefix[len("cache:"):] + "entries"
        count = int(await self.store.incr(counter, 1))
        slack = cap // 10
        if count <= cap or (count - cap - 1) % max(slack, 1):
            return {}
        ages, unreadable = await self._ages()
        for key in unreadable:  # not worth keeping
            await self.store.delete(key)
        surplus = ages[: max(0, len(ages) - (cap - slack))]
        for _, key in surplus:
            await self.store.delete(key)
        await self.store.incr(counter, (len(ages) - len(surplus)) - count)
        return {"evicted": len(surplus)} if surplus else {}

    async def _ages(self) -> tuple[list[tuple[float, str]], list[str]]:
        """Every entry in the store as (created, key), oldest first, and the keys of
        entries that cannot be decoded."""
        ages: list[tuple[float, str]] = []
        unreadable: list[str] = []
        for key in await self.store.scan(self.prefix):
            raw = await self.store.get(key)
            if raw is None:
                continue
            try:
                _, doc = decode_entry(raw)
            except ValueError:
                unreadable.append(key)
                continue
            ages.append((float(doc.get("created", 0.0)), key))
        return sorted(ages), unreadable

    async def _seeded(self) -> OrderedDict[str, float]:
        if self._index is not None:
            return self._index
        ages, _ = await self._ages()
        index = OrderedDict((k, t) for t, k in ages)
        if self._index is not None:  # another call seeded it while this one read the store
            index.update(self._index)
        self._index = index
        return index


# -- YAML --------------------------------------------------------------------------------


class CacheOptions(PatternConfig):
    """The keys the exact and the semantic cache share."""

    inner: ModelRef
    #: A name under ``stores:``, ``memory`` (default) or an inline spec.
    store: str | dict[str, Any] | None = None
    #: Seconds an entry lives (default: until evicted).
    ttl_s: float | None = Field(None, gt=0)
    #: The most entries kept; the oldest go first.
    max_entries: int | None = Field(None, ge=1)
    #: Cache answers sampled at temperature > 0 too.
    cache_sampling: bool = False
    #: Key namespace (default: this node's name); two caches with one namespace share entries.
    namespace: str | None = None


class CacheConfig(CacheOptions):
    kind: Literal["cache"] = "cache"
    #: Keep each tenant's (``metadata.tenant``) entries apart.
    per_tenant: bool = False


def build(cfg: CacheConfig, b: BuildContext) -> Cache:
    return Cache(b.name, b.model(cfg.inner, "inner"), b.store(cfg.store, "store"),
                 ttl_s=cfg.ttl_s, max_entries=cfg.max_entries,
                 cache_sampling=cfg.cache_sampling, per_tenant=cfg.per_tenant,
                 namespace=cfg.namespace)
