"""Arize Phoenix on 127.0.0.1 for the telemetry tests: started from its own virtualenv
(.venv-phoenix, made by scripts/phoenix_venv.sh), on free ports, in a temp dir, stopped
after the session."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
PHOENIX = ROOT / ".venv-phoenix" / "bin" / "phoenix"
# Phoenix migrates its SQLite database at first start: over a minute on a busy machine.
_START_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Phoenix:
    url: str

    def spans(self, project: str, *, want: int, timeout_s: float = 30.0) -> list[dict[str, Any]]:
        """The spans of ``project`` read back through Phoenix's REST API, once at least
        ``want`` of them arrived."""
        deadline = time.monotonic() + timeout_s
        while True:
            got = httpx.get(f"{self.url}/v1/projects/{project}/spans",
                            params={"limit": 1000}, timeout=10)
            data: list[dict[str, Any]] = got.json()["data"] if got.status_code == 200 else []
            if len(data) >= want or time.monotonic() > deadline:
                return data
            time.sleep(0.3)


def start_phoenix(tmp: Path) -> Iterator[Phoenix]:
    if not PHOENIX.exists():
        pytest.skip("Phoenix is not installed: run scripts/phoenix_venv.sh")
    port = free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp),
           "PHOENIX_WORKING_DIR": str(tmp), "PHOENIX_HOST": "127.0.0.1",
           "PHOENIX_PORT": str(port), "PHOENIX_GRPC_PORT": str(free_port()),
           "PHOENIX_TELEMETRY_ENABLED": "false", "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false"}
    log = tmp / "phoenix.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(PHOENIX), "serve"], env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"Phoenix exited with {proc.returncode}:\n"
                            f"{log.read_text(errors='replace')[-3000:]}")
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"Phoenix not up after {_START_TIMEOUT_S:.0f}s; see {log}")
            time.sleep(0.5)
        yield Phoenix(url)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phoenix]:
    yield from start_phoenix(tmp_path_factory.mktemp("phoenix"))
