"""Running several children at once and keeping every outcome, good or bad."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from chorus.core.errors import Cancelled, ChorusError, DeadlineExceeded
from chorus.core.model import Model, call, error_span
from chorus.core.types import Completion, Request, Span

__all__ = ["Outcome", "gather", "gather_until", "call_one", "settled"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one child did: a completion, or the error it raised (with its span)."""

    model: Model
    completion: Completion | None
    error: ChorusError | None
    span: Span
    #: True when the caller cancelled this child because it was no longer needed.
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return self.completion is not None


async def call_one(model: Model, request: Request, timeout_s: float | None = None) -> Outcome:
    """Call ``model``; a ChorusError or a per-child timeout becomes a failed Outcome."""
    started = time.perf_counter()
    try:
        if timeout_s is None:
            c = await call(model, request)
        else:
            try:
                async with asyncio.timeout(timeout_s):
                    c = await call(model, request)
            except TimeoutError:
                raise DeadlineExceeded(
                    f"{model.name!r} took longer than its {timeout_s:g}s timeout"
                ) from None
    except ChorusError as exc:
        return Outcome(model, None, exc, error_span(model, exc, started))
    span = c.trace or Span(kind=model.kind, name=model.name, model=c.model)
    return Outcome(model, c, None, span)


async def gather(
    models: Sequence[Model],
    request: Request | Sequence[Request],
    *,
    timeout_s: float | None = None,
) -> list[Outcome]:
    """Call every model concurrently (one request for all, or one each), in order."""
    requests = [request] * len(models) if isinstance(request, Request) else list(request)
    if len(models) == 1:
        return [await call_one(models[0], requests[0], timeout_s)]
    # Tasks awaited in order rather than asyncio.gather: the same concurrency with one trip
    # through the event loop instead of three (measured: 19 vs 35 µs for three children).
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(call_one(m, r, timeout_s))
             for m, r in zip(models, requests, strict=True)]
    try:
        return [await task for task in tasks]
    except BaseException:
        for task in tasks:
            task.cancel()
        raise


def settled(ok: int, failed: int, total: int, need: int | None) -> bool:
    """Whether a fan-out that wants ``need`` successes (None: every child) can stop:
    it has them, or too few children are left running to reach them."""
    running = total - ok - failed
    if need is None:
        return running == 0
    return ok >= need or ok + running < need


async def gather_until(
    models: Sequence[Model],
    request: Request,
    *,
    need: int | None = None,
    timeouts: Sequence[float | None] | None = None,
) -> list[Outcome]:
    """Call every model concurrently, each under its own timeout; once ``need`` have
    succeeded (or no longer can), cancel the rest. Outcomes come back in child order;
    a cancelled child's Outcome has ``cancelled=True`` and a ``Cancelled`` error.

    Cancelling a child cancels its asyncio task (which closes an HTTP request or
    releases a local model's lock); the cancelled tasks are awaited before this returns,
    so nothing keeps running behind the caller's back."""
    limits = list(timeouts) if timeouts is not None else [None] * len(models)
    started = time.perf_counter()
    tasks = [
        asyncio.create_task(call_one(m, request, t), name=f"chorus:{m.name}")
        for m, t in zip(models, limits, strict=True)
    ]
    position = {task: i for i, task in enumerate(tasks)}
    results: list[Outcome | None] = [None] * len(tasks)
    pending: set[asyncio.Task[Outcome]] = set(tasks)
    ok = failed = 0
    try:
        while pending and not settled(ok, failed, len(tasks), need):
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                outcome = task.result()  # only a non-chorus error raises: a bug, propagate
                results[position[task]] = outcome
                ok, failed = ok + outcome.ok, failed + (not outcome.ok)
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
    out: list[Outcome] = []
    for task, model in zip(tasks, models, strict=True):
        got = results[position[task]]
        if got is None and not task.cancelled():
            got = task.result()  # finished in the same instant it was cancelled: keep it
        if got is None:
            err = Cancelled(f"{model.name!r} was cancelled: the fan-out no longer needed it")
            got = Outcome(model, None, err, error_span(model, asyncio.CancelledError(), started),
                          cancelled=True)
        out.append(got)
    return out
