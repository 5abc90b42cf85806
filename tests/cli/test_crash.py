"""A native crash in ``chorus run`` or ``chorus serve`` ends with a line saying what to do,
not a bare "Segmentation fault"."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from chorus.cli._crash import crash_hint, signal_of, supervise
from tests.conftest import free_port

SEGFAULT = "import ctypes\n\ndef crash(request):\n    ctypes.string_at(0)\n"
CONFIG = ("models:\n  boom: {provider: function, function: 'crasher:crash', thread: false}\n"
          "  fine: {provider: scripted, default: hello}\n")


def test_signal_of_reads_subprocess_and_shell_statuses() -> None:
    assert signal_of(-11) == signal.SIGSEGV and signal_of(139) == signal.SIGSEGV
    assert signal_of(-4) == signal.SIGILL
    assert signal_of(0) is None and signal_of(1) is None and signal_of(130) is None
    assert crash_hint(-15) is None  # terminated on request: not a crash


def test_supervise_turns_a_segfault_into_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    rc = supervise([sys.executable, "-c", "import ctypes; ctypes.string_at(0)"],
                   during="chorus run")
    assert rc == 139
    err = capsys.readouterr().err.strip()
    assert err.startswith("chorus: error: chorus run crashed with SIGSEGV (exit -11)")
    assert "chorus doctor" in err and "bash scripts/setup.sh" in err and "\n" not in err


def test_supervise_passes_exit_status_through() -> None:
    assert supervise([sys.executable, "-c", "raise SystemExit(3)"]) == 3


@pytest.fixture
def crash_cfg(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    (tmp_path / "crasher.py").write_text(SEGFAULT)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    import os

    return cfg, {**os.environ, "PYTHONPATH": str(tmp_path)}


def test_run_crash_shows_the_stack_and_the_fix(crash_cfg: tuple[Path, dict[str, str]]) -> None:
    cfg, env = crash_cfg
    proc = subprocess.run([sys.executable, "-m", "chorus.cli.main", "run", "-c", str(cfg),
                           "-s", "boom", "hi"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 139
    # faulthandler's Python stack, then one line naming the cause and the fix.
    assert "Fatal Python error: Segmentation fault" in proc.stderr
    assert "crasher.py" in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("chorus: error: chorus run crashed with SIGSEGV")
    assert "chorus doctor" in last and "bash scripts/setup.sh" in last


def test_run_without_a_crash_is_unchanged(crash_cfg: tuple[Path, dict[str, str]]) -> None:
    cfg, env = crash_cfg
    proc = subprocess.run([sys.executable, "-m", "chorus.cli.main", "run", "-c", str(cfg),
                           "-s", "fine", "hi"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "hello\n", "")


def test_serve_crash_shows_the_fix(crash_cfg: tuple[Path, dict[str, str]]) -> None:
    cfg, env = crash_cfg
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "chorus.cli.main", "serve", "-c", str(cfg),
                             "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        with pytest.raises(httpx.TransportError):
            httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=30,
                       json={"model": "boom", "messages": [{"role": "user", "content": "hi"}]})
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 139
    last = err.strip().splitlines()[-1]
    assert last.startswith("chorus: error: chorus serve crashed with SIGSEGV")
    assert "bash scripts/setup.sh" in last


def test_serve_stops_on_terminate(crash_cfg: tuple[Path, dict[str, str]]) -> None:
    """The supervising process passes SIGTERM on; the server inside stops too."""
    cfg, env = crash_cfg
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "chorus.cli.main", "serve", "-c", str(cfg),
                             "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2)
            break
        except httpx.TransportError:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
    proc.terminate()
    _, err = proc.communicate(timeout=30)
    assert "crashed" not in err
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2)
