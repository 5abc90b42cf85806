"""Open a store of each backend for tests outside tests/stores (the cache suites)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from chorus.stores import MemoryStore, RedisStore, SQLiteStore, Store

BACKENDS = ["memory", "sqlite", "redis"]


def open_backend(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite":
        return SQLiteStore(tmp_path / "state.db")
    url = request.getfixturevalue("redis_url")
    # A fresh namespace per test keeps tests apart on the one shared server.
    return RedisStore(url, namespace=f"t{uuid.uuid4().hex[:8]}:")
