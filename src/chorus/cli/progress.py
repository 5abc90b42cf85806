"""Progress for the CLI's long steps (embedding a table, searching systems), on stderr
with rich: a live bar on a terminal, a line as each step starts and ends otherwise."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["EVERY_S", "say", "step"]

_console = Console(stderr=True)
#: Off a terminal, how often a long step says how far it is (seconds).
EVERY_S = 30.0


@contextmanager
def step(label: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    """A bar for one step of ``total`` units (a spinner-less bar without a total);
    yields ``advance(n)``. Off a terminal (a log, a pipe), a line when it starts, one every
    ``EVERY_S`` seconds saying how many units are done, and one saying how long it took."""
    started = time.monotonic()
    if not _console.is_terminal:
        _console.print(f"{label} ...", highlight=False)
        done, said = 0, started

        def advance(n: int) -> None:
            # A log has no bar: a line every EVERY_S seconds says the step is moving.
            nonlocal done, said
            done += n
            now = time.monotonic()
            if total and now - said >= EVERY_S:
                said = now
                _console.print(f"{label}: {done}/{total} after {now - started:.0f} s",
                               highlight=False)

        yield advance
        _console.print(f"{label}: done in {time.monotonic() - started:.0f} s",
                       highlight=False)
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=_console, transient=False) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)
        bar.update(task, completed=total if total is not None else 1, total=total or 1)


def say(text: str) -> None:
    """A line on stderr (above a live bar, on a terminal): what a long step is doing now."""
    _console.print(text, highlight=False)
