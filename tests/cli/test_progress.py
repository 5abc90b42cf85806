"""The CLI's progress off a terminal (a log, a pipe): a line as a step starts, a line
every EVERY_S seconds saying how far it is, and one saying how long it took."""

from __future__ import annotations

import io
import time

import pytest
from rich.console import Console

from chorus.cli import progress


def test_a_long_step_off_a_terminal_says_how_far_it_is(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    out = io.StringIO()
    monkeypatch.setattr(progress, "_console", Console(file=out, force_terminal=False))
    clock = iter([0.0, 10.0, 31.0, 40.0, 65.0, 70.0])
    monkeypatch.setattr(time, "monotonic", lambda: next(clock))
    with progress.step("embedding 300 prompts", 300) as advance:
        for _ in range(4):  # at 10, 31, 40 and 65 s
            advance(75)
    lines = out.getvalue().splitlines()
    assert lines == ["embedding 300 prompts ...",
                     "embedding 300 prompts: 150/300 after 31 s",
                     "embedding 300 prompts: 300/300 after 65 s",
                     "embedding 300 prompts: done in 70 s"]


def test_a_step_without_a_total_says_only_when_it_starts_and_ends(
        monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(progress, "_console", Console(file=out, force_terminal=False))
    clock = iter([0.0, 100.0, 200.0])
    monkeypatch.setattr(time, "monotonic", lambda: next(clock))
    with progress.step("searching systems") as advance:
        advance(1)
    assert out.getvalue().splitlines() == ["searching systems ...",
                                           "searching systems: done in 200 s"]
