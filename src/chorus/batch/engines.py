"""Where the items are answered: in this process (``local``) or on a Ray cluster (``ray``).

Both hand the dispatcher (``runner.dispatch``) one ``answer`` coroutine, so both write
the same records to the same checkpoint, and the budget rule is the same. On Ray, each
worker is an async actor that builds the system once from the job's YAML and answers many
items at a time; the driver sends each item to the least busy worker and writes what
comes back. An item whose worker dies before answering goes to another worker: nothing is
lost, and since only an answer that came back is written, nothing is written twice.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from chorus.batch.checkpoint import Writer
from chorus.batch.runner import Outcome, Tally, dispatch
from chorus.batch.worker import Job, Worker
from chorus.core.errors import ChorusError, MissingDependency

__all__ = ["RayPool", "ray_session", "run_local", "run_ray"]


async def run_local(job: Job, items: Iterator[dict[str, Any]], writer: Writer, *,
                    concurrency: int, tally: Tally | None = None) -> Outcome:
    worker = Worker(job)
    try:
        return await dispatch(items, worker.answer, writer, concurrency=concurrency,
                              tally=tally)
    finally:
        await worker.aclose()


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingDependency("ray", "--engine ray", extra="ray") from None
    return ray


class _RayWorker:
    """The actor: one process's Workers (one per system), kept for the whole run."""

    def __init__(self, jobs: list[Job], cwd: str) -> None:
        if os.path.isdir(cwd):  # same machine or shared disk: relative paths hold
            os.chdir(cwd)
        self.workers = {job.system: Worker(job) for job in jobs}
        self.first = jobs[0].system

    async def ready(self) -> int:
        return os.getpid()

    async def answer(self, item: dict[str, Any], system: str | None = None) -> dict[str, Any]:
        return await self.workers[system or self.first].answer(item)

    async def close(self) -> None:
        for worker in self.workers.values():
            await worker.aclose()


class RayPool:
    """``workers`` actors on the cluster, each answering for every job's system;
    ``answer`` sends an item to the least busy one."""

    def __init__(self, jobs: Job | list[Job], workers: int,
                 notify: Callable[[str], None] | None = None) -> None:
        ray = self.ray = _ray()
        self.notify = notify or _to_stderr
        actor = ray.remote(num_cpus=1, max_restarts=0, max_concurrency=10_000)(_RayWorker)
        jobs = jobs if isinstance(jobs, list) else [jobs]
        env: dict[str, str] = {}
        for job in jobs:
            env.update(job.environment())
        actor = actor.options(runtime_env={"env_vars": env}) if env else actor
        self.actors: list[Any] = [actor.remote(jobs, os.getcwd()) for _ in range(workers)]
        self.load: dict[Any, int] = {a: 0 for a in self.actors}
        self.lost = 0
        dead = (ray.exceptions.RayActorError,)
        unavailable = getattr(ray.exceptions, "ActorUnavailableError", None)
        self._dead: tuple[type[BaseException], ...] = dead + ((unavailable,) if unavailable
                                                               else ())

    async def start(self, timeout_s: float = 300.0) -> list[int]:
        """Wait until every worker has built the system; their process ids."""
        try:
            async with asyncio.timeout(timeout_s):
                return list(await asyncio.gather(*(a.ready.remote() for a in self.actors)))
        except self._dead as exc:
            raise ChorusError(f"a Ray worker could not start: {_cause(exc)}") from None
        except TimeoutError:
            raise ChorusError(f"the Ray workers did not start within {timeout_s:g}s (does "
                              "the cluster have a free CPU for each --workers?)") from None

    async def answer(self, item: dict[str, Any], system: str | None = None
                     ) -> dict[str, Any]:
        while True:
            if not self.load:
                raise ChorusError("every Ray worker died; the answers written so far are "
                                  "kept: run again with --resume")
            actor = min(self.load, key=self.load.__getitem__)
            self.load[actor] += 1
            try:
                rec: dict[str, Any] = await actor.answer.remote(item, system)
                return rec
            except self._dead as exc:
                if self.load.pop(actor, None) is not None:
                    self.lost += 1
                    self.notify(f"a Ray worker died ({_cause(exc)}); its items go to the "
                                f"{len(self.load)} others")
            finally:
                if actor in self.load:
                    self.load[actor] -= 1

    async def close(self) -> None:
        for a in list(self.load):
            try:
                await asyncio.wait_for(a.close.remote(), 10)
            except (*self._dead, TimeoutError):  # type: ignore[misc]
                pass  # a worker that is gone has nothing left to close
        for a in self.actors:
            self.ray.kill(a)


def _to_stderr(note: str) -> None:
    print(f"chorus: {note}", file=sys.stderr)


def _cause(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def ray_session(address: str | None) -> Any:
    """Connect to the cluster at ``address`` (``auto``: the one started on this machine
    with ``ray start``; None: a new one in this process)."""
    ray = _ray()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        ray.init(address=address, logging_level="WARNING", log_to_driver=True,
                 configure_logging=True)
    except ConnectionError as exc:
        raise ChorusError(f"cannot reach a Ray cluster at {address!r}: {exc} (start one "
                          "with 'ray start --head', or leave out --address)") from None
    return ray


async def run_ray(job: Job, items: Iterator[dict[str, Any]], writer: Writer, *,
                  concurrency: int, workers: int, tally: Tally | None = None) -> Outcome:
    started = time.monotonic()
    pool = RayPool(job, workers)
    try:
        await pool.start()
        setup_s = time.monotonic() - started
        out = await dispatch(items, pool.answer, writer, concurrency=concurrency * workers,
                             tally=tally)
        out.setup_s = setup_s
        return out
    finally:
        await pool.close()
