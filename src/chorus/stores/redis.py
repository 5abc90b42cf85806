"""Redis store: shared by every process that points at the same server.

The read-modify-write operations (incr with a ttl, reserve, take_tokens) are Lua scripts, so
they are atomic across processes; the token bucket uses the server's clock. Keys are stored
under ``namespace`` (default ``chorus:``) so one Redis can serve other applications too.
"""

from __future__ import annotations

import asyncio
import errno
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio as aredis

from chorus.core.errors import StoreUnavailable
from chorus.stores._base import Store

__all__ = ["RedisStore", "redact"]

# ARGV: amount, ttl_ms ('' for none). Returns the new value as a string.
_INCR = """
local existed = redis.call('EXISTS', KEYS[1])
local v = redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
if existed == 0 and ARGV[2] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return v
"""
# ARGV: amount, limit, ttl_ms. Returns {1|0, total as a string}.
_RESERVE = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return {0, tostring(cur)} end
local existed = redis.call('EXISTS', KEYS[1])
local v = redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
if existed == 0 and ARGV[3] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return {1, v}
"""
# ARGV: amount, rate_per_s, capacity. State "tokens last" as in the other backends; the key
# expires once the bucket would be full again (a missing bucket is a full one).
_TAKE = """
local amount, rate, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tokens, last = cap, now
local raw = redis.call('GET', KEYS[1])
if raw then
  local a, b = string.match(raw, '^(%S+) (%S+)$')
  tokens, last = tonumber(a), tonumber(b)
end
local elapsed = now - last
if elapsed < 0 then elapsed = 0 end
tokens = math.min(cap, tokens + elapsed * rate)
local wait = 0
if amount <= tokens then
  tokens = tokens - amount
elseif amount > cap or rate <= 0 then
  wait = -1
else
  wait = (amount - tokens) / rate
end
local ttl_ms = 86400000
if rate > 0 then ttl_ms = math.ceil((cap - tokens) / rate * 1000) + 1000 end
redis.call('SET', KEYS[1], string.format('%.17g %.17g', tokens, now), 'PX', ttl_ms)
return tostring(wait)
"""


def redact(url: str) -> str:
    """``url`` without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _reason(exc: BaseException) -> str:
    text = str(exc).lower()
    chain: BaseException | None = exc
    while chain is not None:
        if isinstance(chain, ConnectionRefusedError):
            return "connection refused"
        chain = chain.__cause__ or chain.__context__
    if "refused" in text or f"error {errno.ECONNREFUSED} " in text:
        return "connection refused"
    if isinstance(exc, redis.TimeoutError | TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


def _ms(ttl_s: float | None) -> str:
    return "" if ttl_s is None else str(max(1, round(ttl_s * 1000)))


class RedisStore(Store):
    """State on a Redis server (redis.asyncio); one client per event loop."""

    name = "redis"

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *, namespace: str = "chorus:",
                 timeout_s: float = 5.0, max_connections: int = 32) -> None:
        self.url = url
        self.max_connections = max_connections
        self.namespace = namespace
        self.timeout_s = timeout_s
        # A redis.asyncio connection belongs to the loop that opened it, and run_sync starts
        # a new loop per call, so clients are kept per loop.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aredis.Redis] = (
            weakref.WeakKeyDictionary()
        )

    def _client(self) -> aredis.Redis:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            # A blocking pool: a burst of calls waits for a free connection instead of
            # failing with "Too many connections".
            pool = aredis.BlockingConnectionPool.from_url(
                self.url, max_connections=self.max_connections, timeout=self.timeout_s,
                socket_timeout=self.timeout_s, socket_connect_timeout=self.timeout_s,
            )
            client = aredis.Redis(connection_pool=pool)
            self._clients[loop] = client
        return client

    @asynccontextmanager
    async def _guard(self) -> AsyncIterator[aredis.Redis]:
        try:
            yield self._client()
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise StoreUnavailable(
                f"cannot reach Redis at {redact(self.url)}: {_reason(exc)}"
            ) from exc
        except redis.RedisError as exc:
            raise StoreUnavailable(f"Redis at {redact(self.url)} failed: {exc}") from exc

    def _k(self, key: str) -> str:
        return self.namespace + key

    async def _eval(self, script: str, key: str, *args: Any) -> Any:
        async with self._guard() as r:
            return await r.eval(script, 1, self._k(key), *args)  # type: ignore[no-untyped-call]

    async def get(self, key: str) -> bytes | None:
        async with self._guard() as r:
            value = await r.get(self._k(key))
        if value is None:
            return None
        return value if isinstance(value, bytes) else str(value).encode()

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        px = None if ttl_s is None else max(1, round(ttl_s * 1000))
        async with self._guard() as r:
            await r.set(self._k(key), value, px=px)

    async def delete(self, key: str) -> None:
        async with self._guard() as r:
            await r.delete(self._k(key))

    async def incr(self, key: str, amount: float, ttl_s: float | None = None) -> float:
        return float(await self._eval(_INCR, key, repr(float(amount)), _ms(ttl_s)))

    async def reserve(
        self, key: str, amount: float, limit: float, ttl_s: float | None = None
    ) -> tuple[bool, float]:
        ok, total = await self._eval(
            _RESERVE, key, repr(float(amount)), repr(float(limit)), _ms(ttl_s)
        )
        return bool(int(ok)), float(total)

    async def take_tokens(
        self, key: str, amount: float, rate_per_s: float, capacity: float
    ) -> float:
        wait = float(await self._eval(
            _TAKE, key, repr(float(amount)), repr(float(rate_per_s)), repr(float(capacity))
        ))
        return float("inf") if wait < 0 else wait

    async def scan(self, prefix: str) -> list[str]:
        # Escape glob characters: the prefix is matched literally.
        pattern = "".join("\\" + c if c in "*?[]\\" else c for c in self._k(prefix)) + "*"
        cut = len(self.namespace)
        async with self._guard() as r:
            found = [k async for k in r.scan_iter(match=pattern, count=1000)]
        return sorted(k.decode()[cut:] if isinstance(k, bytes) else str(k)[cut:] for k in found)

    async def ping(self) -> None:
        async with self._guard() as r:
            await r.ping()

    def ping_sync(self) -> None:
        """Check the server from sync code (config build time), without an event loop."""
        client = redis.Redis.from_url(self.url, socket_timeout=self.timeout_s,
                                      socket_connect_timeout=self.timeout_s)
        try:
            client.ping()
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise StoreUnavailable(
                f"cannot reach Redis at {redact(self.url)}: {_reason(exc)}"
            ) from exc
        finally:
            client.close()

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        client = self._clients.pop(loop, None)
        if client is not None:
            # The pool was handed in, so the client does not close it by itself.
            await client.aclose(close_connection_pool=True)

    def __repr__(self) -> str:
        return f"<RedisStore {redact(self.url)}>"
