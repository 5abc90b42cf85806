"""The output file is the checkpoint: one JSON line per finished item, appended.

Each record goes out in one ``write`` on a file opened for appending, so a process killed
at any moment (Ctrl-C, ``kill -9``, a crash) leaves every earlier line whole and at most
the last one torn; a full disk stops the run at the line that did not fit. ``open_output``
reads what is there before a run: it repairs a torn last line (cuts it off), refuses a
file damaged anywhere else, and says which ids are answered and which failed, so a
resumed run does exactly the rest and each id appears once. ``--retry-failed`` rewrites
the file without the failed lines (to a temporary file, then an atomic rename).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chorus.core.errors import ChorusError

__all__ = ["OutputError", "Previous", "Writer", "open_output"]


class OutputError(ChorusError):
    """The output file cannot be resumed or written."""

    code = "output_error"


@dataclass(slots=True)
class Previous:
    """What an earlier run left in the output file."""

    done: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    cost_usd: float = 0.0
    repaired: bool = False  # a torn last line was cut off
    retried: int = 0  # failed lines removed for --retry-failed

    @property
    def answered(self) -> set[str]:
        return self.done | self.failed


def _read(path: Path) -> tuple[Previous, int, list[int]]:
    """The records of ``path``, the length of its whole lines, and where each failed line
    starts (for --retry-failed)."""
    prev = Previous()
    failed_at: list[int] = []
    good = 0
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            if not raw.endswith(b"\n"):
                break  # torn: the run that wrote it was stopped mid-line
            try:
                rec = json.loads(raw)
                ident = rec["id"]
                if not isinstance(ident, str):
                    raise TypeError("id")
            except (ValueError, KeyError, TypeError):
                if not raw.strip():
                    good += len(raw)
                    continue
                raise OutputError(f"{path}:{n}: not a record chorus batch wrote; fix or "
                                  "remove that line, or choose another --output") from None
            if ident in prev.answered:
                raise OutputError(f"{path}:{n}: id {ident!r} appears twice; remove one "
                                  "line before resuming")
            if rec.get("error") is None:
                prev.done.add(ident)
            else:
                prev.failed.add(ident)
                failed_at.append(good)
            prev.cost_usd += float(rec.get("cost_usd") or 0.0)
            good += len(raw)
    return prev, good, failed_at


def _without_failed(path: Path, failed_at: list[int]) -> None:
    skip = set(failed_at)
    tmp = path.with_name(path.name + ".retry-tmp")
    with path.open("rb") as src, tmp.open("wb") as dst:
        pos = 0
        for raw in src:
            if pos not in skip:
                dst.write(raw)
            pos += len(raw)
        dst.flush()
        os.fsync(dst.fileno())
    os.replace(tmp, path)


def open_output(path: str | Path, *, resume: bool, retry_failed: bool = False) -> Previous:
    """Check the output file before a run and bring it to a clean state; what it holds.

    Without ``resume`` (or ``retry_failed``, which implies it) a file with records is
    refused, so a finished run is never appended to by mistake."""
    p = Path(path)
    if p.is_dir():
        raise OutputError(f"output {str(p)!r} is a folder; give a file name")
    if not p.exists() or p.stat().st_size == 0:
        if not p.parent.exists():
            raise OutputError(f"the folder of output {str(p)!r} does not exist")
        return Previous()
    prev, good, failed_at = _read(p)
    if not (resume or retry_failed):
        raise OutputError(f"output {str(p)!r} already holds {len(prev.answered)} answers; "
                          "pass --resume to finish that run, or choose another --output")
    if good < p.stat().st_size:
        with p.open("r+b") as f:
            f.truncate(good)
        prev.repaired = True
    if retry_failed and failed_at:
        _without_failed(p, failed_at)
        prev.retried = len(prev.failed)
        prev.failed = set()
        prev.cost_usd = _read(p)[0].cost_usd
    return prev


class Writer:
    """Appends one record a line; each line is one ``os.write``. Syncs to disk about
    once a second and when closed, so a power cut loses at most the last second."""

    def __init__(self, path: str | Path, sync_every_s: float = 1.0) -> None:
        self.path = Path(path)
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutputError(f"cannot write output {str(self.path)!r}: {exc.strerror}") \
                from None
        self._sync_every = sync_every_s
        self._synced = time.monotonic()

    def write(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode()
        try:
            done = os.write(self._fd, line)
            if done != len(line):  # only when the disk filled up mid-line
                raise OSError(28, "No space left on device")
        except OSError as exc:
            raise OutputError(f"cannot write to {str(self.path)!r}: {exc.strerror}; the "
                              "lines written so far are kept: free space and run again "
                              "with --resume") from None
        now = time.monotonic()
        if now - self._synced >= self._sync_every:
            self._synced = now
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            try:
                os.fsync(self._fd)
            except OSError:
                pass  # closing after a full disk: the error was already reported
            os.close(self._fd)
            self._fd = -1
