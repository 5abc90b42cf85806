"""Native crashes (a SIGSEGV inside llama.cpp, an illegal instruction ...) kill the Python
process before any Python code can run, so a process cannot explain its own crash. The
commands that run native code therefore run in a child process, and the parent, which
runs none, turns a crash into one line that names the cause and the fix. The child
enables ``faulthandler`` so the Python stack of the crash is still printed above it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["CHILD_ENV", "crash_hint", "signal_of", "supervise"]

#: Set in the child so that it runs the command itself instead of supervising again.
CHILD_ENV = "CHORUS_SUPERVISED"

_FATAL = {signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT}
_REBUILD = "rebuild llama.cpp with `bash scripts/setup.sh` (the portable build)"


def signal_of(returncode: int) -> signal.Signals | None:
    """The fatal signal a child died of (``-11`` from subprocess, ``139`` from a shell)."""
    num = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else 0
    try:
        sig = signal.Signals(num)
    except ValueError:
        return None
    return sig if sig in _FATAL else None


def crash_hint(returncode: int, during: str = "chorus") -> str | None:
    """One line naming the crash and the fix, or None when ``returncode`` is no crash."""
    sig = signal_of(returncode)
    if sig is None:
        return None
    return (f"{during} crashed with {sig.name} (exit {returncode}) in native code, most often "
            f"a llama.cpp build made for another CPU: run `chorus doctor` to see which part "
            f"fails, and {_REBUILD}")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, before exec
    # Linux: the child gets SIGTERM if the parent is killed outright (SIGKILL).
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def supervise(argv: Sequence[str], *, during: str = "chorus") -> int:
    """Run ``argv`` as a child sharing this terminal; print the crash line if it dies of
    a fatal signal. Returns the exit status a shell would show (128 + signal)."""
    env = {**os.environ, CHILD_ENV: "1"}
    linux = sys.platform.startswith("linux")
    proc = subprocess.Popen(list(argv), env=env,
                            preexec_fn=_die_with_parent if linux else None)  # noqa: PLW1509

    def forward(signum: int, _frame: Any) -> None:
        proc.send_signal(signum)

    # Ctrl-C reaches the child through the terminal's process group; the child says
    # "interrupted" itself. Termination requests sent to this process are passed on.
    previous = {s: signal.signal(s, h) for s, h in (
        (signal.SIGINT, signal.SIG_IGN), (signal.SIGTERM, forward), (signal.SIGHUP, forward))}
    try:
        rc = proc.wait()
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    hint = crash_hint(rc, during)
    if hint is not None:
        print(f"chorus: error: {hint}", file=sys.stderr)
    return 128 - rc if rc < 0 else rc
