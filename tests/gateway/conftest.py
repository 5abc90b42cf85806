"""Gateways on 127.0.0.1 for the tests: uvicorn in a thread, on a free port."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from chorus.config.builder import Config
from chorus.gateway import Gateway, create_app, hash_key
from tests.conftest import free_port

KEYS = {"alice": "sk-alice-secret", "bob": "sk-bob-secret", "carol": "sk-carol-secret",
        "dave": "sk-dave-secret"}

CONFIG = f"""\
models:
  fast:
    provider: scripted
    rules: {{capital: Paris}}
    default: hello from fast
    usage: {{input_tokens: 10, output_tokens: 5}}
    price: {{input: 1000, output: 2000}}
  broken: {{provider: scripted, fail_with: server_error, fail_times: -1}}
  slowpoke: {{provider: scripted, fail_with: timeout, fail_times: -1}}
systems:
  safe: {{kind: fallback, models: [broken, fast], cooldown_s: 0}}
gateway:
  keys:
    - {{name: alice, key_sha256: {hash_key(KEYS["alice"])}}}
    - {{name: bob, key_sha256: {hash_key(KEYS["bob"])}, systems: [fast]}}
    - name: carol
      key_sha256: {hash_key(KEYS["carol"])}
      budget: {{tokens: 40, seconds: 3600}}
    - name: dave
      key_sha256: {hash_key(KEYS["dave"])}
      rate_limit: {{requests_per_minute: 2}}
"""


@contextlib.contextmanager
def serving(app: Any, **options: Any) -> Iterator[str]:
    """Serve ``app`` on a free port of 127.0.0.1 (``options`` override uvicorn's);
    yields the base URL (no /v1)."""
    port = free_port()
    config = uvicorn.Config(app, **{"host": "127.0.0.1", "port": port, "log_level": "warning",
                                    "lifespan": "on", "ws": "none", "access_log": False,
                                    **options})
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the gateway did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def gateway() -> Gateway:
    return Gateway.from_config(Config.from_text(CONFIG, "gateway.yaml"))


@pytest.fixture
def base_url(gateway: Gateway) -> Iterator[str]:
    with serving(create_app(gateway)) as url:
        yield url
