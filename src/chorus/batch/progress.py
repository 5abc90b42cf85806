"""The progress of a batch run: a bar with the rate, ETA and money spent on a terminal
(``rich``), a plain line every ``every_s`` seconds otherwise (logs, CI)."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.progress import Progress

__all__ = ["Bar"]


class Bar:
    """Counts records as they are written; ``already`` were in the output before."""

    def __init__(self, total: int, already: int = 0, *, stream: TextIO | None = None,
                 every_s: float = 10.0) -> None:
        self.total, self.already = total, already
        self.done = self.failed = 0
        self.cost_usd = 0.0
        self.stream = stream if stream is not None else sys.stderr
        self.every_s = every_s
        # The rate counts from the first answer: workers that take a while to start
        # (a Ray cluster) do not drag it down.
        self._first: float | None = None
        self._last = time.monotonic()
        self._bar: Progress | None = None
        if getattr(self.stream, "isatty", lambda: False)():
            # rich only on a terminal: a run under a scheduler starts sooner without it.
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            console = Console(file=self.stream)
            self._bar = Progress(
                TextColumn("batch"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:.1f} items/s"), TextColumn("ETA"),
                TimeRemainingColumn(), TimeElapsedColumn(),
                TextColumn("${task.fields[cost]:.4f}"),
                TextColumn("{task.fields[failed]} failed"), console=console)
            self._task = self._bar.add_task("batch", total=total, completed=already,
                                            rate=0.0, cost=0.0, failed=0)

    def __enter__(self) -> Bar:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif self.done + self.failed:
            self._line()

    @property
    def rate(self) -> float:
        if self._first is None:
            return 0.0
        elapsed = time.monotonic() - self._first
        return (self.done + self.failed - 1) / elapsed if elapsed > 0 else 0.0

    def record(self, rec: dict[str, Any]) -> None:
        if self._first is None:
            self._first = time.monotonic()
        if rec.get("error") is None:
            self.done += 1
        else:
            self.failed += 1
        self.cost_usd += float(rec.get("cost_usd") or 0.0)
        if self._bar is not None:
            self._bar.update(self._task, advance=1, rate=self.rate, cost=self.cost_usd,
                             failed=self.failed)
            return
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            self._line()

    def _line(self) -> None:
        n = self.already + self.done + self.failed
        rate = self.rate
        eta = f", ETA {(self.total - n) / rate:.0f}s" if rate > 0 and n < self.total else ""
        self.stream.write(f"batch: {n}/{self.total} ({self.failed} failed), "
                          f"{rate:.1f} items/s{eta}, ${self.cost_usd:.4f} spent\n")
        self.stream.flush()
