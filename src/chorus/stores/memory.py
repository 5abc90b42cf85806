"""In-process store: a dict with monotonic-clock TTLs, safe under asyncio.

No method awaits between its read and its write, so each is atomic on one event loop.
"""

from __future__ import annotations

import time

from chorus.stores._base import Store, bucket_take, decode_bucket, decode_number, encode_number

__all__ = ["MemoryStore"]


class MemoryStore(Store):
    """State kept in this process; lost when it exits."""

    name = "memory"

    def __init__(self) -> None:
        # key -> (value, expires_at on the monotonic clock, or None for no expiry)
        self._data: dict[str, tuple[bytes, float | None]] = {}

    def _entry(self, key: str) -> tuple[bytes, float | None] | None:
        entry = self._data.get(key)
        if entry is not None and entry[1] is not None and entry[1] <= time.monotonic():
            del self._data[key]
            return None
        return entry

    @staticmethod
    def _expiry(ttl_s: float | None) -> float | None:
        return None if ttl_s is None else time.monotonic() + ttl_s

    async def get(self, key: str) -> bytes | None:
        entry = self._entry(key)
        return None if entry is None else entry[0]

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        self._data[key] = (bytes(value), self._expiry(ttl_s))

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def incr(self, key: str, amount: float, ttl_s: float | None = None) -> float:
        entry = self._entry(key)
        if entry is None:
            new, expires = amount, self._expiry(ttl_s)
        else:
            new, expires = decode_number(entry[0]) + amount, entry[1]
        self._data[key] = (encode_number(new), expires)
        return new

    async def reserve(
        self, key: str, amount: float, limit: float, ttl_s: float | None = None
    ) -> tuple[bool, float]:
        entry = self._entry(key)
        current = 0.0 if entry is None else decode_number(entry[0])
        if current + amount > limit:
            return False, current
        expires = self._expiry(ttl_s) if entry is None else entry[1]
        self._data[key] = (encode_number(current + amount), expires)
        return True, current + amount

    async def take_tokens(
        self, key: str, amount: float, rate_per_s: float, capacity: float
    ) -> float:
        now = time.time()
        entry = self._entry(key)
        tokens, last = decode_bucket(None if entry is None else entry[0], capacity, now)
        left, wait = bucket_take(tokens, last, now, amount, rate_per_s, capacity)
        self._data[key] = (f"{left!r} {now!r}".encode(), None)
        return wait

    async def scan(self, prefix: str) -> list[str]:
        now = time.monotonic()
        return sorted(
            k for k, (_, exp) in self._data.items()
            if k.startswith(prefix) and (exp is None or exp > now)
        )
