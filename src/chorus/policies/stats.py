"""Live per-model statistics in a store: calls, errors, latency and cost over a sliding window.

    stats = StoreStats(RedisStore(url))
    router = Router("r", classifier, routes, default="chat", stats=stats)

``StoreStats`` implements the router's two-method ``LatencyStore`` (``record`` /
``latency``, see ``routing.selection``), so every process behind one Redis routes on the
same measurements. Counters are kept per time bucket of ``bucket_s`` seconds with atomic
``incr`` (no read-modify-write, so concurrent writers never lose a sample); the averages
are over the last ``buckets`` buckets, a sliding window. As in ``LatencyStats``, a failed
call counts ``error_penalty_s`` extra, so a failing model looks slow.

``record`` and ``latency`` are synchronous (the router calls them on its hot path): a
record is written by a background task, and ``latency`` answers from a local copy that it
refreshes in the background once older than ``refresh_s``. ``flush`` awaits the writes;
``read`` and ``arecord`` are the awaitable forms.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from chorus.core.errors import StoreUnavailable
from chorus.core.model import run_sync
from chorus.stores import Store, decode_number

__all__ = ["FIELDS", "ModelStats", "StoreStats", "bucket_of", "summarize"]

#: The counters kept per model and bucket: calls, errors, latency and cost sums.
FIELDS = ("n", "err", "lat", "cost")


# -- arithmetic (no I/O) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelStats:
    """Sums over the window; the averages are derived."""

    calls: int = 0
    errors: int = 0
    latency_sum: float = 0.0
    cost_sum: float = 0.0

    def add(self, latency_s: float, error: bool, cost_usd: float) -> ModelStats:
        return ModelStats(self.calls + 1, self.errors + int(error),
                          self.latency_sum + latency_s, self.cost_sum + cost_usd)

    def latency(self, error_penalty_s: float = 0.0) -> float | None:
        """Mean latency, each failed call counting ``error_penalty_s`` more."""
        if not self.calls:
            return None
        return (self.latency_sum + self.errors * error_penalty_s) / self.calls


def bucket_of(now: float, bucket_s: float) -> int:
    return int(now // bucket_s)


def summarize(buckets: Iterable[Mapping[str, float]]) -> ModelStats:
    """Sum the counters of the buckets in the window (a missing field is 0)."""
    calls = errors = 0
    lat = cost = 0.0
    for b in buckets:
        calls += int(b.get("n", 0))
        errors += int(b.get("err", 0))
        lat += b.get("lat", 0.0)
        cost += b.get("cost", 0.0)
    return ModelStats(calls, errors, lat, cost)


# -- the store-backed statistics ----------------------------------------------------------


class StoreStats:
    """Per-model call statistics shared through a store (a ``LatencyStore``)."""

    def __init__(
        self,
        store: Store,
        *,
        bucket_s: float = 60.0,
        buckets: int = 5,
        error_penalty_s: float = 5.0,
        refresh_s: float = 1.0,
        prefix: str = "chorus:stats:",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if bucket_s <= 0 or buckets < 1:
            raise ValueError("bucket_s must be > 0 and buckets >= 1")
        self.store = store
        self.bucket_s = bucket_s
        self.buckets = buckets
        self.error_penalty_s = error_penalty_s
        self.refresh_s = refresh_s
        self.prefix = prefix
        self.clock = clock
        self._local: dict[str, tuple[float, ModelStats]] = {}
        self._pending: set[asyncio.Task[Any]] = set()
        #: Writes or reads lost to an unavailable store (statistics are advisory).
        self.dropped = 0

    def _key(self, model: str, index: int, name: str) -> str:
        return f"{self.prefix}{model}:{index}:{name}"

    # -- awaitable API --

    async def arecord(self, model: str, latency_s: float, error: bool = False,
                      cost_usd: float = 0.0) -> None:
        index = bucket_of(self.clock(), self.bucket_s)
        # The bucket lives as long as any window that includes it.
        ttl = self.bucket_s * (self.buckets + 1)
        for name, value in zip(FIELDS, (1.0, float(error), latency_s, cost_usd), strict=True):
            if value:
                await self.store.incr(self._key(model, index, name), value, ttl)

    async def read(self, model: str) -> ModelStats:
        """The statistics of ``model`` over the window, from the store."""
        last = bucket_of(self.clock(), self.bucket_s)
        rows = []
        for index in range(last - self.buckets + 1, last + 1):
            row: dict[str, float] = {}
            for name in FIELDS:
                raw = await self.store.get(self._key(model, index, name))
                if raw is not None:
                    row[name] = decode_number(raw)
            rows.append(row)
        stats = summarize(rows)
        self._local[model] = (time.monotonic(), stats)
        return stats

    async def flush(self) -> None:
        """Wait for the writes and refreshes started by ``record`` and ``latency``."""
        while self._pending:
            await asyncio.gather(*list(self._pending))

    # -- the LatencyStore API (synchronous, for the router) --

    def record(self, model: str, latency_s: float, error: bool = False,
               cost_usd: float = 0.0) -> None:
        seen, stats = self._local.get(model, (0.0, ModelStats()))
        self._local[model] = (seen, stats.add(latency_s, error, cost_usd))
        self._spawn(self.arecord(model, latency_s, error, cost_usd))

    def latency(self, model: str) -> float | None:
        entry = self._local.get(model)
        if entry is None or time.monotonic() - entry[0] > self.refresh_s:
            if entry is None:
                # Nothing known yet: mark it so one refresh runs, not one per call.
                self._local[model] = (time.monotonic(), ModelStats())
            else:
                self._local[model] = (time.monotonic(), entry[1])
            self._spawn(self.read(model))
        value = self._local[model][1]
        return value.latency(self.error_penalty_s)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            run_sync(self._quiet(coro))
            return
        task = loop.create_task(self._quiet(coro))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _quiet(self, coro: Coroutine[Any, Any, Any]) -> None:
        try:
            await coro
        except StoreUnavailable:
            self.dropped += 1
