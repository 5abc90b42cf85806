"""``chorus bench --engine ray``: the bench's answers come from Ray workers, through the
same pool as ``chorus batch --engine ray``; scoring stays in the driver (a judge or a
recorded table is there).

    answers = RayAnswers(Path("systems.yaml"), ["single", "vote"], workers=2)
    await answers.start()
    results = await run_bench(systems, items, scorer, answer=answers)
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from chorus.batch.engines import RayPool
from chorus.batch.worker import Job
from chorus.core.errors import ChorusError
from chorus.core.types import Completion, Span, Usage
from chorus.eval.datasets import Item

__all__ = ["RayAnswers", "span_from_dict"]


def span_from_dict(data: dict[str, Any]) -> Span:
    """A Span back from ``Span.to_dict`` (as a trace crosses from a worker)."""
    return Span(kind=data["kind"], name=data["name"], model=data.get("model"),
                usage=Usage(**data.get("usage") or {}), cost_usd=data.get("cost_usd", 0.0),
                latency_s=data.get("latency_s", 0.0), start=data.get("start", 0.0),
                attributes=data.get("attributes") or {}, error=data.get("error"),
                children=[span_from_dict(c) for c in data.get("children") or ()])


def _item(item: Item) -> dict[str, Any]:
    messages = item.request().messages
    if any(m.parts or m.tool_calls or m.tool_call_id for m in messages):
        raise ChorusError(f"item {item.id!r}: --engine ray takes text messages only")
    return {"id": item.id, "messages": [{"role": m.role, "content": m.content}
                                        for m in messages], "params": {}, "metadata": {}}


class RayAnswers:
    """Answers ``(system, item)`` on a pool of Ray workers that each hold every system."""

    def __init__(self, config: Path, systems: list[str], workers: int,
                 timeout_s: float | None = None) -> None:
        run_id = uuid.uuid4().hex[:12]
        self.pool = RayPool([Job.from_file(config, s, run_id, trace=True, timeout_s=timeout_s)
                             for s in systems], workers)

    async def start(self) -> None:
        await self.pool.start()

    async def __call__(self, system: str, item: Item) -> Completion:
        rec = await self.pool.answer(_item(item), system)
        trace = span_from_dict(rec["trace"]) if rec.get("trace") else None
        error = rec.get("error")
        if error is not None:
            exc = ChorusError(f"{error['kind']}: {error['message']}")
            exc.trace = trace or Span(kind="batch", name=system,
                                      cost_usd=rec.get("cost_usd", 0.0), error=error["message"])
            raise exc
        return Completion(rec["text"], rec["model"], Usage(**rec["usage"]), rec["cost_usd"],
                          rec["latency_s"], rec.get("finish_reason"), trace)

    async def close(self) -> None:
        await self.pool.close()
