"""The dispatcher: feeds items to an engine's ``answer`` with bounded concurrency and
appends each record to the output as it comes, whatever the engine.

A run's budget is held by reservations (``policies.budget``): a call is refused when its
estimate does not fit beside what is spent and what calls in flight hold. A refusal while
other calls are in flight only means "not now": the item waits for one of them to settle
and asks again. A refusal with nothing in flight means the budget is spent: the run stops
taking items, lets nothing else start, and leaves the rest without a line for a later
``--resume`` with a larger budget.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from chorus.batch.checkpoint import Writer

__all__ = ["Answer", "Outcome", "Tally", "dispatch"]

Answer = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class Tally(Protocol):
    """What watches the run (the progress bar)."""

    def record(self, rec: dict[str, Any]) -> None: ...


#: The distinct error messages a run keeps (``Outcome.errors``).
MAX_MESSAGES = 100


@dataclass(slots=True)
class Outcome:
    """What one run did (not counting what earlier runs left in the output)."""

    done: int = 0
    failed: int = 0
    cost_usd: float = 0.0
    elapsed_s: float = 0.0
    #: Why the run stopped before the end of the input (None: it did not).
    stopped: str | None = None
    #: Seconds the engine took to start its workers (before ``elapsed_s``).
    setup_s: float = 0.0
    #: The failed items by error message: [how many, the first item's id]; at most
    #: ``MAX_MESSAGES`` messages, the rest counted under "" (a run may be millions long).
    errors: dict[str, list[Any]] = field(default_factory=dict)

    def failure(self, item_id: Any, message: str) -> None:
        """Count one failed item."""
        if message not in self.errors and len(self.errors) >= MAX_MESSAGES:
            message = ""
        self.errors.setdefault(message, [0, item_id])[0] += 1

    @property
    def answered(self) -> int:
        return self.done + self.failed


class _Gate:
    """Counts calls in flight and calls settled; wakes waiters when one settles."""

    def __init__(self) -> None:
        self.calling = 0
        self.settled = 0
        self.cond = asyncio.Condition()

    async def wait_after(self, seen: int, stop: asyncio.Event) -> None:
        async with self.cond:
            await self.cond.wait_for(lambda: self.settled != seen or stop.is_set())

    async def wake(self, settled: bool = True) -> None:
        async with self.cond:
            self.settled += int(settled)
            self.cond.notify_all()


async def dispatch(items: Iterator[dict[str, Any]], answer: Answer, writer: Writer, *,
                   concurrency: int, tally: Tally | None = None) -> Outcome:
    """Answer every item of ``items`` (at most ``concurrency`` at a time) and write each
    record; stop early only when the run's budget is spent."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    out = Outcome()
    gate = _Gate()
    stop = asyncio.Event()
    started = time.monotonic()

    async def one(item: dict[str, Any]) -> None:
        while not stop.is_set():
            seen = gate.settled
            gate.calling += 1
            try:
                rec = await answer(item)
            except BaseException:
                gate.calling -= 1
                await gate.wake()
                raise
            gate.calling -= 1
            refused = rec.get("refused")
            if refused is None:
                writer.write(rec)
                error = rec.get("error")
                if error is None:
                    out.done += 1
                else:
                    out.failed += 1
                    out.failure(rec.get("id"), str(error.get("message", error)
                                                   if isinstance(error, dict) else error))
                out.cost_usd += float(rec.get("cost_usd") or 0.0)
                if tally is not None:
                    tally.record(rec)
                await gate.wake()
                return
            if gate.settled != seen:  # a call settled meanwhile: ask again at once
                continue
            if gate.calling == 0:  # nothing holds money but what is spent: stop
                out.stopped = (f"budget reached: the next call may cost up to "
                               f"${refused['asked']:.4f}, and ${refused['spent']:.4f} of "
                               f"${refused['limit']:.4f} is spent")
                stop.set()
                await gate.wake(settled=False)
                return
            await gate.wait_after(seen, stop)

    async def lane() -> None:
        for item in items:  # one shared iterator: each item goes to exactly one lane
            if stop.is_set():
                return
            await one(item)

    lanes = [asyncio.ensure_future(lane()) for _ in range(concurrency)]
    try:
        await asyncio.gather(*lanes)
    except BaseException:
        for task in lanes:  # one lane failed (the disk is full, every worker died):
            task.cancel()  # stop the others before the output is closed
        await asyncio.gather(*lanes, return_exceptions=True)
        raise
    finally:
        out.elapsed_s = time.monotonic() - started
    return out
