"""open_store specs, and a Redis that cannot be reached."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from chorus.core.errors import ConfigError, StoreUnavailable
from chorus.stores import MemoryStore, RedisStore, SQLiteStore, __all__, open_store
from chorus.stores._base import bucket_take
from chorus.stores.redis import redact


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def test_public_names() -> None:
    assert set(__all__) == {"MemoryStore", "RedisStore", "SQLiteStore", "Store", "decode_number",
                            "open_store", "register"}


def test_specs(tmp_path: Path) -> None:
    assert isinstance(open_store("memory"), MemoryStore)
    assert isinstance(open_store({"kind": "memory"}), MemoryStore)
    s = open_store({"kind": "sqlite", "path": str(tmp_path / "a.db")})
    assert isinstance(s, SQLiteStore) and s.path.endswith("a.db")
    r = open_store({"kind": "redis", "url": _dead_url(), "ping": False})
    assert isinstance(r, RedisStore)


@pytest.mark.parametrize(("spec", "message"), [
    ("postgres", "unknown store 'postgres'"),
    ({"kind": "sqlite"}, "needs 'path:'"),
    ({"kind": "sqlite", "path": "x", "url": "y"}, "unknown key(s) for a sqlite store: url"),
    ({"kind": "redis", "url": "http://x"}, "redis://HOST:PORT/DB"),
    (42, "a store is 'memory' or a mapping"),
])
def test_bad_specs_raise_value_error(spec: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        open_store(spec)  # type: ignore[arg-type]
    assert message in str(info.value)


def test_unreachable_redis_fails_at_start_up_in_one_line() -> None:
    url = _dead_url()
    with pytest.raises(StoreUnavailable) as info:
        open_store({"kind": "redis", "url": url, "timeout_s": 1})
    assert str(info.value) == f"cannot reach Redis at {url}: connection refused"


async def test_unreachable_redis_ping_is_store_unavailable() -> None:
    url = _dead_url()
    store = RedisStore(url, timeout_s=1)
    with pytest.raises(StoreUnavailable) as info:
        await store.ping()
    assert str(info.value) == f"cannot reach Redis at {url}: connection refused"
    with pytest.raises(StoreUnavailable):
        await store.get("k")
    await store.aclose()


def test_unreachable_redis_in_yaml_is_a_config_error_with_the_line() -> None:
    from chorus.config.builder import Config

    url = _dead_url()
    cfg = Config.from_text(f"""
stores:
  shared: {{kind: redis, url: "{url}"}}
models:
  m: {{provider: scripted, default: hi}}
systems:
  c: {{kind: cache, inner: m, store: shared}}
""")
    with pytest.raises(ConfigError) as info:
        cfg.get("c")
    assert f"cannot reach Redis at {url}: connection refused" in str(info.value)
    assert "\n" not in str(info.value)


def test_redact_hides_the_password() -> None:
    assert redact("redis://u:secret@h:6379/0") == "redis://u:***@h:6379/0"
    assert redact("redis://h:6379/0") == "redis://h:6379/0"


def test_bucket_take_arithmetic() -> None:
    assert bucket_take(3, 0, 0, 1, 1, 3) == (2, 0.0)
    assert bucket_take(0, 0, 1, 1, 1, 3) == (0, 0.0)  # refilled one token in 1s
    assert bucket_take(0, 0, 0.5, 1, 1, 3) == (0.5, 0.5)
    assert bucket_take(0, 0, 100, 2, 1, 3) == (1, 0.0)  # refill stops at capacity
