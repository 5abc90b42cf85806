"""What answers the items of a batch, in this process or in a Ray worker: the system
built from the job's YAML, under the run's budget when it has one.

``Job`` is everything a worker needs, as plain data (it is sent to Ray workers, which
build the system from the same YAML text and share state through the stores it names).
``Worker.answer`` turns one item into its output record; one item's failure becomes an
``error`` record and never stops the others. A call the run's own budget refuses is not
a failure of the item: the worker answers ``{"refused": ...}`` and the dispatcher decides
whether to wait for calls in flight to settle or to stop (see ``runner``).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chorus.batch.items import to_request
from chorus.config.builder import Config
from chorus.config.loader import load_text
from chorus.core.context import scope
from chorus.core.errors import BudgetExceeded, ChorusError
from chorus.core.model import Model, call
from chorus.policies.budget import Budget, Window
from chorus.stores import MemoryStore

__all__ = ["Job", "Worker", "BUDGET_WINDOW_S"]

#: How long the run's budget counters live in their store (a run longer than this
#: starts counting afresh).
BUDGET_WINDOW_S = 30 * 86400.0


@dataclass(frozen=True, slots=True)
class Job:
    config_text: str
    config_file: str  # absolute, so paths in the YAML resolve the same everywhere
    system: str
    run_id: str  # names the run's budget keys in the store
    trace: bool = False
    timeout_s: float | None = None
    budget_usd: float | None = None  # what this run may still spend
    store: str | None = None  # a name under ``stores:`` for the run's budget

    @classmethod
    def from_file(cls, path: str | Path, system: str, run_id: str, **options: Any) -> Job:
        p = Path(path).resolve()
        return cls(p.read_text(encoding="utf-8"), str(p), system, run_id, **options)

    def config(self) -> Config:
        return Config(load_text(self.config_text, self.config_file))

    def environment(self) -> dict[str, str]:
        """The variables this job reads from the environment, as set here: the YAML's
        ``${NAME}`` references and every API key variable of the system's models. Ray
        workers get them (a cluster's processes do not share the driver's environment)."""
        names = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", self.config_text))
        todo = [self.config().get(self.system)]
        while todo:
            model = todo.pop()
            env = getattr(model, "api_key_env", None)
            if isinstance(env, str):
                names.add(env)
            todo.extend(model.children())
        return {n: os.environ[n] for n in sorted(names) if n in os.environ}


class Worker:
    """One process's copy of the system, answering items concurrently."""

    def __init__(self, job: Job) -> None:
        self.job = job
        cfg = job.config()
        self.system: Model = cfg.get(job.system)
        self.budget: Budget | None = None
        self.model = self.system
        if job.budget_usd is not None:
            store = cfg.builder.store(job.store, "stores") if job.store else MemoryStore()
            self.budget = Budget(f"batch-{job.run_id}", self.system, store=store,
                                 window=Window(usd=job.budget_usd, per="global",
                                               seconds=BUDGET_WINDOW_S))
            self.model = self.budget

    async def answer(self, item: dict[str, Any]) -> dict[str, Any]:
        """The output record of one item (``{"id", "refused"}`` when the run's budget
        refused its call)."""
        started = time.perf_counter()
        rec: dict[str, Any] = {"id": item["id"]}
        try:
            with scope(deadline_s=self.job.timeout_s):
                answer = await call(self.model, to_request(item))
        except BudgetExceeded as exc:
            if self._refused_by_run(exc):
                rec["refused"] = {"spent": exc.spent, "asked": exc.asked, "limit": exc.limit}
                return rec
            return self._error(rec, exc, started)
        except ChorusError as exc:
            return self._error(rec, exc, started)
        except Exception as exc:  # noqa: BLE001 - recorded in the item's line, never lost
            return self._error(rec, exc, started, kind="internal_error")
        rec.update(answer.to_dict(trace=self.job.trace))
        if item["metadata"]:
            rec["metadata"] = item["metadata"]
        return rec

    def _refused_by_run(self, exc: BudgetExceeded) -> bool:
        span = exc.trace
        return (self.budget is not None and span is not None
                and span.name == self.budget.name and "refused" in span.attributes)

    def _error(self, rec: dict[str, Any], exc: Exception, started: float,
               kind: str | None = None) -> dict[str, Any]:
        span = exc.trace if isinstance(exc, ChorusError) else None
        message = str(exc) if isinstance(exc, ChorusError) else f"{type(exc).__name__}: {exc}"
        rec["error"] = {"kind": kind or getattr(exc, "code", "error"), "message": message}
        rec["cost_usd"] = span.cost_usd if span is not None else 0.0
        rec["latency_s"] = time.perf_counter() - started
        if self.job.trace and span is not None:
            rec["trace"] = span.to_dict()
        return rec

    async def aclose(self) -> None:
        await self.system.aclose()
