"""State stores for policies: memory, SQLite, Redis behind one small interface.

    store = open_store("memory")
    store = open_store({"kind": "sqlite", "path": "state/chorus.db"})
    store = open_store({"kind": "redis", "url": "redis://127.0.0.1:6379/0"})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chorus.stores._base import Store, decode_number
from chorus.stores.memory import MemoryStore
from chorus.stores.redis import RedisStore
from chorus.stores.sqlite import SQLiteStore

__all__ = ["MemoryStore", "RedisStore", "SQLiteStore", "Store", "decode_number", "open_store"]

_KEYS: dict[str, set[str]] = {
    "memory": {"kind"},
    "sqlite": {"kind", "path"},
    "redis": {"kind", "url", "namespace", "timeout_s", "ping"},
}


def open_store(spec: str | Mapping[str, Any] | Store) -> Store:
    """The store ``spec`` describes: ``memory``, ``{kind: sqlite, path}`` or ``{kind: redis,
    url}``. A Redis server is pinged here, so an unreachable one fails at start-up with
    StoreUnavailable (skip with ``ping: false``). A bad spec raises ValueError."""
    if isinstance(spec, Store):
        return spec
    if isinstance(spec, str):
        spec = {"kind": spec}
    if not isinstance(spec, Mapping):
        raise ValueError(f"a store is 'memory' or a mapping with 'kind:', got {spec!r}")
    kind = spec.get("kind")
    if kind not in _KEYS:
        raise ValueError(f"unknown store {kind!r}; known: {', '.join(_KEYS)} "
                         "(a name must be defined under 'stores:')")
    unknown = set(spec) - _KEYS[kind]
    if unknown:
        raise ValueError(f"unknown key(s) for a {kind} store: {', '.join(sorted(unknown))}; "
                         f"allowed: {', '.join(sorted(_KEYS[kind] - {'kind'}))}")
    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite":
        path = spec.get("path")
        if not isinstance(path, str) or not path:
            raise ValueError("a sqlite store needs 'path:' (a file name)")
        return SQLiteStore(path)
    url = spec.get("url", "redis://127.0.0.1:6379/0")
    if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"a redis store needs 'url: redis://HOST:PORT/DB', got {url!r}")
    store = RedisStore(url, namespace=str(spec.get("namespace", "chorus:")),
                       timeout_s=float(spec.get("timeout_s", 5.0)))
    if spec.get("ping", True):
        store.ping_sync()
    return store
