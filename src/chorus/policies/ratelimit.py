"""Rate limit: requests and tokens per minute, per model or per key, shared through a store.

    RateLimit("paced", model, requests_per_minute=60, tokens_per_minute=40_000,
              per="key", on_limit="queue", store=RedisStore(url))

Each limit is a token bucket (``Store.take_tokens``) that refills at the per-minute rate
and holds ``burst_s`` seconds' worth (default a minute), so a quiet spell allows a burst.
A request takes one request token and its estimated tokens (prompt + output allowance).
Over the limit,
``on_limit: queue`` sleeps until the bucket refills (bounded by the request deadline and
``max_wait_s``) and tries again; ``refuse`` raises ``RateLimitError`` with ``retry_after``.
A stream takes its permits before it starts.
Put the limit around a leaf for exact token counts: around a composite, the estimate sees
one prompt, not every call the composite makes.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, Literal

from pydantic import Field

from chorus.config.schema import ModelRef, PatternConfig
from chorus.core.context import remaining
from chorus.core.errors import ChorusError, RateLimitError
from chorus.core.model import Model
from chorus.core.registry import BuildContext
from chorus.core.types import Request
from chorus.policies._guarded import (
    DEFAULT_MAX_TOKENS,
    GuardedWrapper,
    OnStoreError,
    StoreGate,
    attach_span,
    output_allowance,
    prompt_tokens,
    target_name,
)
from chorus.stores import MemoryStore, Store

__all__ = ["RateLimit", "RateLimitConfig", "bucket", "build", "next_sleep"]

OnLimit = Literal["queue", "refuse"]


# -- decisions (no I/O) --------------------------------------------------------------------


def bucket(per_minute: float, burst_s: float = 60.0) -> tuple[float, float]:
    """A per-minute limit as a token bucket: (refill rate per second, capacity), the
    bucket holding ``burst_s`` seconds' worth of the rate."""
    rate = per_minute / 60.0
    return rate, rate * burst_s


def next_sleep(wait: float, on_limit: OnLimit, waited: float, max_wait_s: float,
               left: float | None) -> float | None:
    """How long to sleep before taking again, or None to refuse now: never when
    refusing, nor past the deadline (``left`` seconds) or ``max_wait_s`` in all."""
    if on_limit == "refuse" or math.isinf(wait):
        return None
    allowed = max_wait_s - waited if left is None else min(left, max_wait_s - waited)
    return wait if wait <= allowed else None


# -- the wrapper ---------------------------------------------------------------------------


class RateLimit(GuardedWrapper[dict[str, Any]]):
    """Holds calls to its model under a requests- and tokens-per-minute limit."""

    kind = "ratelimit"
    can_stream = True

    def __init__(
        self,
        name: str,
        inner: Model,
        *,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        per: Literal["model", "key", "session"] = "model",
        on_limit: OnLimit = "queue",
        max_wait_s: float = 60.0,
        burst_s: float = 60.0,
        store: Store | None = None,
        on_store_error: OnStoreError = "open",
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
    ) -> None:
        super().__init__(name, inner)
        if requests_per_minute is None and tokens_per_minute is None:
            raise ValueError("a rate limit needs requests_per_minute or tokens_per_minute")
        if any(v is not None and v <= 0 for v in (requests_per_minute, tokens_per_minute)):
            raise ValueError("rate limits must be > 0")
        if burst_s <= 0:
            raise ValueError("burst_s must be > 0")
        if on_limit not in ("queue", "refuse"):
            raise ValueError(f"on_limit must be 'queue' or 'refuse', got {on_limit!r}")
        self.rpm = requests_per_minute
        self.tpm = tokens_per_minute
        self.per = per
        self.on_limit: OnLimit = on_limit
        self.max_wait_s = max_wait_s
        self.burst_s = burst_s
        self.gate = StoreGate(store or MemoryStore(), on_store_error, f"rate limit {name!r}")
        self.default_max_tokens = default_max_tokens
        # Per model name, so every wrapper around the same model shares its buckets.
        self.model_name = target_name(inner)
        self.key_prefix = f"chorus:ratelimit:{self.model_name}:"

    async def _take(self, key: str, amount: float, per_minute: float, what: str, who: str,
                    notes: dict[str, Any]) -> float:
        """Take ``amount`` from one bucket, queueing as configured; the seconds waited."""
        rate, capacity = bucket(per_minute, self.burst_s)
        waited = 0.0
        while True:
            wait = await self.gate.run(
                self.gate.store.take_tokens(key, amount, rate, capacity), notes, "take tokens")
            if wait is None or wait <= 0:
                return waited
            sleep = next_sleep(wait, self.on_limit, waited, self.max_wait_s, remaining())
            if sleep is None:
                scope = "" if self.per == "model" else f" for {self.per} {who!r}"
                if math.isinf(wait):
                    raise RateLimitError(
                        f"rate limit {self.name!r}: a request needs {amount:,.0f} {what}, more "
                        f"than {per_minute:g} {what}/min{scope} with a {self.burst_s:g}s burst "
                        "can ever allow",
                        model=self.model_name)
                notes["waited_s"] = waited
                raise RateLimitError(
                    f"rate limit {self.name!r}: over {per_minute:g} {what}/min{scope}; "
                    f"retry in {wait:.2f}s", retry_after=wait, model=self.model_name)
            await asyncio.sleep(sleep)
            waited += sleep

    # -- the wrapper's steps (chorus.core.Wrapper) ----------------------------------------

    async def enter(self, request: Request, started: float) -> dict[str, Any]:
        """Take this request's permits (queueing as configured; a stream takes them
        before it starts); what to record."""
        await self.gate.ready()
        who = "*" if self.per == "model" else str(request.metadata.get(self.per, "-"))
        notes: dict[str, Any] = {"per": self.per, "who": who, "waited_s": 0.0}
        tokens = 0
        try:
            waited = 0.0
            if self.rpm is not None:
                waited += await self._take(f"{self.key_prefix}{who}:requests", 1, self.rpm,
                                           "requests", who, notes)
            if self.tpm is not None:
                tokens = prompt_tokens(self.inner, request) + output_allowance(
                    self.inner, request, self.default_max_tokens)
                notes["tokens"] = tokens
                waited += await self._take(f"{self.key_prefix}{who}:tokens", tokens, self.tpm,
                                           "tokens", who, notes)
            notes["waited_s"] = waited
        except ChorusError as exc:
            attach_span(self, exc, started, notes)
            raise
        return notes

    def attributes(self, state: dict[str, Any]) -> dict[str, Any]:
        return state

    async def status(self) -> dict[str, Any]:
        keys = await self.gate.store.scan(self.key_prefix)
        return {"kind": "ratelimit", "name": self.name, "model": self.model_name,
                "per": self.per, "requests_per_minute": self.rpm,
                "tokens_per_minute": self.tpm, "on_limit": self.on_limit,
                "buckets": len({k.rsplit(":", 1)[0] for k in keys})}


# -- YAML --------------------------------------------------------------------------------


class RateLimitConfig(PatternConfig):
    kind: Literal["ratelimit"] = "ratelimit"
    inner: ModelRef
    requests_per_minute: float | None = Field(None, gt=0)
    tokens_per_minute: float | None = Field(None, gt=0)
    #: One limit for the model, or one per ``request.metadata["key"]`` / ``["session"]``.
    per: Literal["model", "key", "session"] = "model"
    on_limit: Literal["queue", "refuse"] = "queue"
    #: The longest a queued request waits in all (the request deadline also bounds it).
    max_wait_s: float = Field(60.0, ge=0)
    #: The bucket holds this many seconds' worth of the rate (the largest burst).
    burst_s: float = Field(60.0, gt=0)
    store: str | dict[str, Any] | None = None
    on_store_error: Literal["open", "closed"] = "open"
    default_max_tokens: int = Field(DEFAULT_MAX_TOKENS, ge=1)


def build(cfg: RateLimitConfig, b: BuildContext) -> RateLimit:
    return RateLimit(
        b.name, b.model(cfg.inner, "inner"), requests_per_minute=cfg.requests_per_minute,
        tokens_per_minute=cfg.tokens_per_minute, per=cfg.per, on_limit=cfg.on_limit,
        max_wait_s=cfg.max_wait_s, burst_s=cfg.burst_s, store=b.store(cfg.store, "store"),
        on_store_error=cfg.on_store_error, default_max_tokens=cfg.default_max_tokens,
    )
