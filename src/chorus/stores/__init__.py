"""State stores for policies: memory, SQLite, Redis behind one small interface.

    store = open_store("memory")
    store = open_store({"kind": "sqlite", "path": "state/chorus.db"})
    store = open_store({"kind": "redis", "url": "redis://127.0.0.1:6379/0"})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chorus.core.registry import Registry, registry
from chorus.stores._base import Store, decode_number
from chorus.stores.memory import MemoryStore
from chorus.stores.redis import RedisStore
from chorus.stores.sqlite import SQLiteStore

__all__ = ["MemoryStore", "RedisStore", "SQLiteStore", "Store", "decode_number", "open_store",
           "register"]

_KEYS: dict[str, set[str]] = {
    "memory": {"kind"},
    "sqlite": {"kind", "path"},
    "redis": {"kind", "url", "namespace", "timeout_s", "ping"},
}


def open_store(spec: str | Mapping[str, Any] | Store) -> Store:
    """The store ``spec`` describes: ``memory``, ``{kind: sqlite, path}``, ``{kind: redis,
    url}``, or a kind a plugin registered. A Redis server is pinged here, so an unreachable
    one fails at start-up with StoreUnavailable (skip with ``ping: false``). A bad spec
    raises ValueError."""
    if isinstance(spec, Store):
        return spec
    if isinstance(spec, str):
        spec = {"kind": spec}
    if not isinstance(spec, Mapping):
        raise ValueError(f"a store is 'memory' or a mapping with 'kind:', got {spec!r}")
    name = spec.get("kind")
    kind = registry.get("store", name) if isinstance(name, str) else None
    if kind is None:
        raise ValueError(f"unknown store {name!r}; known: {', '.join(registry.names('store'))} "
                         "(a name must be defined under 'stores:')")
    store = kind.build(spec)
    if not isinstance(store, Store):
        raise TypeError(f"store kind {name!r} built a {type(store).__name__}, not a Store")
    return store


def _allowed(spec: Mapping[str, Any]) -> None:
    kind = spec["kind"]
    unknown = set(spec) - _KEYS[kind]
    if unknown:
        raise ValueError(f"unknown key(s) for a {kind} store: {', '.join(sorted(unknown))}; "
                         f"allowed: {', '.join(sorted(_KEYS[kind] - {'kind'}))}")


def _memory(spec: Mapping[str, Any]) -> Store:
    _allowed(spec)
    return MemoryStore()


def _sqlite(spec: Mapping[str, Any]) -> Store:
    _allowed(spec)
    path = spec.get("path")
    if not isinstance(path, str) or not path:
        raise ValueError("a sqlite store needs 'path:' (a file name)")
    return SQLiteStore(path)


def _redis(spec: Mapping[str, Any]) -> Store:
    _allowed(spec)
    url = spec.get("url", "redis://127.0.0.1:6379/0")
    if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"a redis store needs 'url: redis://HOST:PORT/DB', got {url!r}")
    store = RedisStore(url, namespace=str(spec.get("namespace", "chorus:")),
                       timeout_s=float(spec.get("timeout_s", 5.0)))
    if spec.get("ping", True):
        store.ping_sync()
    return store


def register(registry: Registry) -> None:
    """Register the built-in stores (the ``chorus.plugins`` entry point)."""
    registry.store("memory", _memory, "in this process only")
    registry.store("sqlite", _sqlite, "a SQLite file: one machine, several processes")
    registry.store("redis", _redis, "a Redis server: shared by every process and machine")
