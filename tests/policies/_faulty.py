"""Fault injection for the policy tests: a store that fails on chosen calls, and a
private redis-server that a test can stop halfway."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chorus.core.errors import StoreUnavailable
from chorus.stores import MemoryStore, Store
from tests.conftest import free_port


class FlakyStore(Store):
    """Delegates to ``inner`` but raises StoreUnavailable on the methods in ``fail``
    (all of them when ``fail`` is None) while ``broken`` is True."""

    name = "flaky"

    def __init__(self, inner: Store | None = None, fail: set[str] | None = None) -> None:
        self.inner = inner or MemoryStore()
        self.fail = fail
        self.broken = True
        self.calls: list[str] = []

    def _check(self, method: str) -> None:
        self.calls.append(method)
        if self.broken and (self.fail is None or method in self.fail):
            raise StoreUnavailable(f"injected fault in {method}")

    async def get(self, key: str) -> bytes | None:
        self._check("get")
        return await self.inner.get(key)

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        self._check("set")
        await self.inner.set(key, value, ttl_s)

    async def delete(self, key: str) -> None:
        self._check("delete")
        await self.inner.delete(key)

    async def incr(self, key: str, amount: float, ttl_s: float | None = None) -> float:
        self._check("incr")
        return await self.inner.incr(key, amount, ttl_s)

    async def reserve(self, key: str, amount: float, limit: float,
                      ttl_s: float | None = None) -> tuple[bool, float]:
        self._check("reserve")
        return await self.inner.reserve(key, amount, limit, ttl_s)

    async def take_tokens(self, key: str, amount: float, rate_per_s: float,
                          capacity: float) -> float:
        self._check("take_tokens")
        return await self.inner.take_tokens(key, amount, rate_per_s, capacity)

    async def scan(self, prefix: str) -> list[str]:
        self._check("scan")
        return await self.inner.scan(prefix)


class RedisProcess:
    """A redis-server of this test's own, so the test may stop it."""

    def __init__(self, tmp: Path) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.skip("redis-server is not installed")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = tmp / f"redis-{self.port}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(tmp)], stdout=out,
                stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20.0
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"redis-server exited: {self.log.read_text(errors='replace')}")
            with contextlib.suppress(OSError), \
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return
            if time.monotonic() > deadline:
                pytest.fail(f"redis-server not ready after 20s; see {self.log}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@contextlib.contextmanager
def redis_process(tmp: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp)
    try:
        yield server
    finally:
        server.stop()


def unique(prefix: str = "t") -> str:
    """A namespace no other test uses on the shared session Redis."""
    return f"{prefix}{time.monotonic_ns()}:"


def spans(answer: Any) -> list[str]:
    return [s.name for s in answer.trace.walk()]
