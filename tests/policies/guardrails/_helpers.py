"""Test checks with set latencies and outcomes."""

from __future__ import annotations

import asyncio
from typing import Any

from chorus.policies.guardrails import Check, Finding
from chorus.policies.guardrails._checks import EMBEDDING, Subject


class SleepCheck(Check):
    """Waits ``delay`` seconds, then finds something when ``finds`` is set. Records
    whether it finished or was cancelled."""

    tier = EMBEDDING

    def __init__(self, name: str, delay: float, *, finds: bool = False, **kw: Any) -> None:
        super().__init__(name, **kw)
        self.delay, self.finds = delay, finds
        self.finished = self.cancelled = False

    async def run(self, subject: Subject) -> Finding | None:
        try:
            await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        self.finished = True
        return Finding(f"{self.name} found it", span=(0, 1)) if self.finds else None
