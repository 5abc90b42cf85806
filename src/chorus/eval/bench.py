"""Run systems over a dataset with bounded concurrency; score every answer.

    results = await run_bench({"single": m, "vote": v}, items, make_scorer("exact"))

A failed answer is kept as an error and scores 0 (a system that cannot answer is not
right); items the scorer cannot judge (score None) are left out of the quality.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from chorus.core.context import scope
from chorus.core.errors import ChorusError
from chorus.core.model import FAMILIES, Model, call
from chorus.core.types import Completion, Span, ToolCall
from chorus.eval.datasets import Item
from chorus.eval.outcomes import Outcome, OutcomeItem
from chorus.eval.scorers import Scorer, holds

__all__ = [
    "Answerer",
    "ItemResult",
    "Progress",
    "run_bench",
    "system_kind",
    "leaf_calls",
    "to_outcomes",
    "error_lines",
    "exact_misses",
    "commonest_messages",
    "COMPLEXITY",
]

#: Simplest first: what ``recommend`` prefers among systems of similar quality.
COMPLEXITY = FAMILIES


def system_kind(model: Model) -> str:
    """The family the model states (single / sequential / parallel / hierarchical /
    ensemble); a wrapper (one child, e.g. a cache or retry) takes its child's. A
    composite that states none counts as hierarchical."""
    if model.family is not None:
        return model.family
    children = list(model.children())
    if len(children) == 1:
        return system_kind(children[0])
    return "hierarchical" if children else "single"


def leaf_calls(span: Span | None) -> int:
    """The number of leaf model calls in a trace (failed ones included)."""
    if span is None:
        return 0
    return sum(1 for s in span.walk() if s.kind == "model")


@dataclass(frozen=True, slots=True)
class ItemResult:
    system: str
    item_id: str
    score: float | None
    cost_usd: float
    latency_s: float
    calls: int
    text: str | None = None
    model: str | None = None
    output_tokens: int = 0
    error: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()


class Progress:
    """A bar on a terminal; plain lines every ``every_s`` seconds otherwise."""

    def __init__(self, total: int, stream: TextIO | None = None, *, every_s: float = 10.0,
                 label: str = "bench") -> None:
        self.total, self.done, self.errors = total, 0, 0
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every_s, self.label = every_s, label
        self._started = self._last = time.monotonic()

    def update(self, error: bool = False) -> None:
        self.done += 1
        self.errors += int(error)
        now = time.monotonic()
        if self.tty:
            width = 30
            filled = int(width * self.done / max(self.total, 1))
            self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] "
                              f"{self.done}/{self.total} errors {self.errors} "
                              f"{now - self._started:.0f}s")
            if self.done == self.total:
                self.stream.write("\n")
            self.stream.flush()
        elif now - self._last >= self.every_s or self.done == self.total:
            self._last = now
            self.stream.write(f"{self.label}: {self.done}/{self.total} done, "
                              f"{self.errors} errors, {now - self._started:.0f}s\n")
            self.stream.flush()


#: Where a system's answer comes from when not from the Model in this process (the Ray
#: workers of ``chorus bench --engine ray``: ``chorus.batch.bench.RayAnswers``).
Answerer = Callable[[str, Item], Awaitable[Completion]]


async def _one(name: str, model: Model, item: Item, scorer: Scorer,
               timeout_s: float | None, answerer: Answerer | None = None) -> ItemResult:
    started = time.perf_counter()
    answer: Completion | None = None
    try:
        with scope(deadline_s=timeout_s):
            answer = await (call(model, item.request()) if answerer is None
                            else answerer(name, item))
    except ChorusError as exc:
        latency = time.perf_counter() - started
        span = exc.trace
        cost = span.cost_usd if span is not None else 0.0
        calls = leaf_calls(span) if span is not None else 1
        return ItemResult(name, item.id, 0.0, cost, latency, calls, error=str(exc))
    latency = time.perf_counter() - started
    try:
        score, _ = await scorer.score(item, answer)
        error = None
    except ChorusError as exc:
        score, error = None, f"scorer: {exc}"
    return ItemResult(name, item.id, score, answer.cost_usd, latency,
                      max(1, leaf_calls(answer.trace)), answer.text, answer.model,
                      answer.usage.output_tokens, error, answer.tool_calls)


async def run_bench(
    systems: Mapping[str, Model],
    items: Sequence[Item],
    scorer: Scorer,
    *,
    concurrency: int = 8,
    timeout_s: float | None = None,
    progress: Progress | None = None,
    on_result: Callable[[ItemResult], None] | None = None,
    answerer: Answerer | None = None,
) -> dict[str, list[ItemResult]]:
    """Every system on every item, at most ``concurrency`` calls in flight; results per
    system in item order."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    jobs = [(name, i) for i in range(len(items)) for name in systems]
    results: dict[str, list[ItemResult | None]] = {n: [None] * len(items) for n in systems}
    queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)

    async def worker() -> None:
        while True:
            try:
                name, i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            res = await _one(name, systems[name], items[i], scorer, timeout_s, answerer)
            results[name][i] = res
            if progress is not None:
                progress.update(res.error is not None)
            if on_result is not None:
                on_result(res)

    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(jobs)) or 1)))
    return {n: [r for r in rs if r is not None] for n, rs in results.items()}


def to_outcomes(items: Sequence[Item], results: Mapping[str, Sequence[ItemResult]]
                ) -> list[OutcomeItem]:
    """An outcome table of a bench run: each system is one 'model' of the table."""
    by_item: dict[str, dict[str, Outcome]] = {it.id: {} for it in items}
    for name, rs in results.items():
        for r in rs:
            by_item[r.item_id][name] = Outcome(
                r.score, r.cost_usd, r.text, r.output_tokens if r.error is None else None,
                r.tool_calls)
    return [OutcomeItem(it.id, it.prompt, it.category, it.reference, by_item[it.id])
            for it in items]


def error_lines(results: Mapping[str, Sequence[ItemResult]], most: int = 3) -> list[str]:
    """What failed, so that a run's errors are read and not only counted: for each system
    with errors, how many items failed, then its ``most`` commonest messages, each with
    how many items gave it and the first such item. A message that names its own item
    ("item 'q7' has no outcome for 'm'") counts with the same message of other items."""
    lines = []
    for name, rs in results.items():
        by_message: dict[str, list[Any]] = {}  # message -> [items, the first one]
        for r in rs:
            if r.error is not None:
                message = r.error.replace(f"item {r.item_id!r}", "the item")
                by_message.setdefault(message, [0, r.item_id])[0] += 1
        if not by_message:
            continue
        failed = sum(n for n, _ in by_message.values())
        lines.append(f"{name}: {failed} of {len(rs)} items failed")
        lines += [f"  {line}" for line in commonest_messages(by_message, most)]
    return lines


def exact_misses(results: Mapping[str, Sequence[ItemResult]], items: Sequence[Item]
                 ) -> list[str]:
    """For a run scored by exact match: per system, how many of the answers that scored 0
    hold the whole reference as words ("The capital of France is Paris." for "Paris"),
    with the first one, so that a table of zeros says why. Nothing when none do."""
    refs = {i.id: i.reference for i in items if i.reference}
    lines = []
    for name, rs in results.items():
        held = [r for r in rs if r.score == 0 and r.text and refs.get(r.item_id)
                and holds(r.text, refs[r.item_id])]
        if held:
            zeros = sum(1 for r in rs if r.score == 0)
            first = held[0]
            text = first.text or ""
            shown = text if len(text) <= 60 else text[:57] + "..."
            lines.append(f"{name}: {len(held)} of its {zeros} answers scored 0 by exact match "
                         f"hold the reference in a longer answer (first: item {first.item_id}, "
                         f"{shown!r})")
    return lines


def commonest_messages(by_message: Mapping[str, Sequence[Any]], most: int = 3) -> list[str]:
    """The ``most`` commonest of ``by_message`` (message -> [how many items, the first
    one]), one line each, then how many other messages there were."""
    ranked = sorted(by_message.items(), key=lambda kv: -kv[1][0])
    lines = [f"{n} x {msg} (first: item {first})" for msg, (n, first) in ranked[:most]]
    if len(ranked) > most:
        lines.append(f"and {len(ranked) - most} other message(s)")
    return lines
