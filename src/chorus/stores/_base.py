"""The store contract: shared state for policies (budgets, breakers, rate limits, caches).

Keys are str and values bytes. Every method is atomic per key, so a budget ``reserve`` or a
rate-limit ``take_tokens`` is safe under concurrency within one process (memory, SQLite) or
across processes (Redis).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

__all__ = ["Store", "bucket_take", "decode_bucket", "decode_number", "encode_number"]


class Store(ABC):
    """Shared state for policies. Keys are str; values bytes. Every method is atomic per key."""

    name: str = "store"

    @abstractmethod
    async def get(self, key: str) -> bytes | None:
        """The value of ``key``, or None when missing or expired."""

    @abstractmethod
    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        """Store ``value`` under ``key``; it expires after ``ttl_s`` seconds when given."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove ``key`` (no error when missing)."""

    @abstractmethod
    async def incr(self, key: str, amount: float, ttl_s: float | None = None) -> float:
        """Atomically add ``amount`` (missing key = 0) and return the new value.

        ``ttl_s`` is applied when the key is created.
        """

    @abstractmethod
    async def reserve(
        self, key: str, amount: float, limit: float, ttl_s: float | None = None
    ) -> tuple[bool, float]:
        """Atomic check-and-add.

        If current + amount <= limit, add and return (True, new total); else change nothing
        and return (False, current). ``ttl_s`` is applied when the key is created.
        """

    @abstractmethod
    async def take_tokens(
        self, key: str, amount: float, rate_per_s: float, capacity: float
    ) -> float:
        """Token bucket: refill at ``rate_per_s`` up to ``capacity``, then take ``amount``.

        Returns 0.0 when taken; otherwise takes nothing and returns the seconds to wait until
        ``amount`` would be available (``inf`` when it never will: amount > capacity or rate 0).
        """

    @abstractmethod
    async def scan(self, prefix: str) -> list[str]:
        """The live keys that start with ``prefix``."""

    async def ping(self) -> None:
        """Raise StoreUnavailable with one clear line when the store cannot be used."""
        return None

    async def aclose(self) -> None:
        """Release connections or files."""
        return None


def bucket_take(
    tokens: float, last: float, now: float, amount: float, rate_per_s: float, capacity: float
) -> tuple[float, float]:
    """One token-bucket step, I/O-free: returns (tokens left after refill/take, wait seconds).

    ``tokens`` and ``last`` are the stored state (a new bucket starts full); the caller stores
    the returned token count with ``now`` as the new ``last``.
    """
    elapsed = max(0.0, now - last)
    tokens = min(capacity, tokens + elapsed * rate_per_s)
    if amount <= tokens:
        return tokens - amount, 0.0
    if amount > capacity or rate_per_s <= 0:
        return tokens, math.inf
    return tokens, (amount - tokens) / rate_per_s


def encode_number(value: float) -> bytes:
    """A counter's stored form: its decimal text, as Redis INCRBYFLOAT keeps it."""
    return repr(float(value)).encode()


def decode_number(raw: bytes) -> float:
    """Read a counter back; an empty value counts as 0."""
    text = raw.decode().strip()
    return float(text) if text else 0.0


def decode_bucket(raw: bytes | None, capacity: float, now: float) -> tuple[float, float]:
    """A token bucket's stored state "tokens last_refill"; a new bucket starts full."""
    if raw is None:
        return capacity, now
    tokens, _, last = raw.decode().partition(" ")
    return float(tokens), float(last or now)
