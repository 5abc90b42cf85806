"""SQLite store: one file, one process, survives restarts.

sqlite3 is blocking, so every call runs on one dedicated worker thread that owns the
connection; that also serialises the calls of this process. WAL mode and ``BEGIN
IMMEDIATE`` around each read-modify-write keep the atomic operations atomic should a second
process open the same file. Expiry times are wall-clock (``time.time()``) so they survive a
restart.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from chorus.core.errors import StoreUnavailable
from chorus.stores._base import Store, bucket_take, decode_bucket, decode_number, encode_number

__all__ = ["SQLiteStore"]

T = TypeVar("T")
_SCHEMA = "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires REAL)"
#: Every this many writes, expired rows are purged (reads already ignore them).
_PURGE_EVERY = 1000


class SQLiteStore(Store):
    """State in a SQLite file (``:memory:`` for a throwaway one)."""

    name = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._writes = 0

    # -- the worker thread ----------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(_SCHEMA)
            self._conn = conn
        return self._conn

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def job() -> T:
            try:
                return fn(self._connection())
            except (sqlite3.Error, OSError) as exc:
                raise StoreUnavailable(f"SQLite store at {self.path}: {exc}") from exc

        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix="chorus-sqlite")
        return await asyncio.get_running_loop().run_in_executor(self._pool, job)

    @staticmethod
    def _read(conn: sqlite3.Connection, key: str, now: float) -> tuple[bytes, float | None] | None:
        row = conn.execute("SELECT value, expires FROM kv WHERE key = ?", (key,)).fetchone()
        if row is None or (row[1] is not None and row[1] <= now):
            return None
        return bytes(row[0]), row[1]

    def _write(self, conn: sqlite3.Connection, key: str, value: bytes,
               expires: float | None) -> None:
        conn.execute("INSERT OR REPLACE INTO kv (key, value, expires) VALUES (?, ?, ?)",
                     (key, value, expires))
        self._writes += 1
        if self._writes % _PURGE_EVERY == 0:
            conn.execute("DELETE FROM kv WHERE expires IS NOT NULL AND expires <= ?",
                         (time.time(),))

    def _atomic(self, fn: Callable[[sqlite3.Connection], T]) -> Callable[[sqlite3.Connection], T]:
        def txn(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                out = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return out

        return txn

    # -- the contract -----------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        found = await self._run(lambda c: self._read(c, key, time.time()))
        return None if found is None else found[0]

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        expires = None if ttl_s is None else time.time() + ttl_s
        await self._run(lambda c: self._write(c, key, bytes(value), expires))

    async def delete(self, key: str) -> None:
        await self._run(lambda c: c.execute("DELETE FROM kv WHERE key = ?", (key,)))

    async def incr(self, key: str, amount: float, ttl_s: float | None = None) -> float:
        def add(conn: sqlite3.Connection) -> float:
            now = time.time()
            found = self._read(conn, key, now)
            if found is None:
                new, expires = amount, None if ttl_s is None else now + ttl_s
            else:
                new, expires = decode_number(found[0]) + amount, found[1]
            self._write(conn, key, encode_number(new), expires)
            return new

        return await self._run(self._atomic(add))

    async def reserve(
        self, key: str, amount: float, limit: float, ttl_s: float | None = None
    ) -> tuple[bool, float]:
        def check_and_add(conn: sqlite3.Connection) -> tuple[bool, float]:
            now = time.time()
            found = self._read(conn, key, now)
            current = 0.0 if found is None else decode_number(found[0])
            if current + amount > limit:
                return False, current
            expires = (None if ttl_s is None else now + ttl_s) if found is None else found[1]
            self._write(conn, key, encode_number(current + amount), expires)
            return True, current + amount

        return await self._run(self._atomic(check_and_add))

    async def take_tokens(
        self, key: str, amount: float, rate_per_s: float, capacity: float
    ) -> float:
        def take(conn: sqlite3.Connection) -> float:
            now = time.time()
            found = self._read(conn, key, now)
            tokens, last = decode_bucket(None if found is None else found[0], capacity, now)
            left, wait = bucket_take(tokens, last, now, amount, rate_per_s, capacity)
            self._write(conn, key, f"{left!r} {now!r}".encode(), None)
            return wait

        return await self._run(self._atomic(take))

    async def scan(self, prefix: str) -> list[str]:
        def keys(conn: sqlite3.Connection) -> list[str]:
            # A range on the primary key, not LIKE: a prefix may hold % or _.
            rows = conn.execute(
                "SELECT key FROM kv WHERE key >= ? AND key < ? "
                "AND (expires IS NULL OR expires > ?) ORDER BY key",
                (prefix, prefix + "\U0010ffff", time.time()),
            ).fetchall()
            return [r[0] for r in rows]

        return await self._run(keys)

    async def ping(self) -> None:
        await self._run(lambda c: c.execute("SELECT 1").fetchone())

    async def aclose(self) -> None:
        def close(_: sqlite3.Connection) -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        if self._conn is not None:
            await self._run(close)
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __repr__(self) -> str:
        return f"<SQLiteStore {self.path!r}>"
