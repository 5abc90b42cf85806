"""Summaries of a bench run and the files they go to: a text table, Markdown, CSV, JSON
and a cost-vs-quality PNG with the Pareto frontier marked (matplotlib, the ``eval``
extra, imported only when a plot is asked for).
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from chorus.core.errors import MissingDependency
from chorus.eval.bench import COMPLEXITY, ItemResult

__all__ = [
    "Summary",
    "summarise",
    "wilson",
    "bootstrap",
    "percentile",
    "pareto",
    "dominated",
    "recommend",
    "table",
    "text_table",
    "markdown",
    "to_csv",
    "to_json",
    "plot",
]


def wilson(successes: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95 % by default)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap(values: Sequence[float], rounds: int = 1000, seed: int = 0) -> tuple[float, float]:
    """The 95 % percentile-bootstrap interval of a mean (fixed seed: reproducible)."""
    if not values:
        return 0.0, 1.0
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(rounds))
    return means[int(0.025 * rounds)], means[min(rounds - 1, int(0.975 * rounds))]


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of a non-empty list."""
    xs = sorted(values)
    if not xs:
        return 0.0
    pos = (len(xs) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass(frozen=True, slots=True)
class Summary:
    system: str
    kind: str
    items: int
    quality: float
    quality_low: float
    quality_high: float
    cost_usd: float
    cost_per_item_usd: float
    latency_p50_s: float
    latency_p95_s: float
    calls_per_item: float
    errors: int


def summarise(name: str, kind: str, results: Sequence[ItemResult]) -> Summary:
    scores = [r.score for r in results if r.score is not None]
    n = len(scores)
    quality = sum(scores) / n if n else 0.0
    if all(s in (0.0, 1.0) for s in scores):
        low, high = wilson(sum(scores), n)
    else:
        low, high = bootstrap(scores)
    cost = sum(r.cost_usd for r in results)
    lat = [r.latency_s for r in results]
    count = max(len(results), 1)
    return Summary(name, kind, len(results), quality, low, high, cost, cost / count,
                   percentile(lat, 50), percentile(lat, 95),
                   sum(r.calls for r in results) / count,
                   sum(1 for r in results if r.error is not None))


def pareto(summaries: Sequence[Summary]) -> list[str]:
    """The systems no other system beats on both cost and quality, cheapest first."""
    front: list[str] = []
    best = -math.inf
    for s in sorted(summaries, key=lambda s: (s.cost_usd, -s.quality)):
        if s.quality > best:
            front.append(s.system)
            best = s.quality
    return front


def dominated(summaries: Sequence[Summary]) -> dict[str, str]:
    """Each system another beats (at least as good and as cheap, better at one), and the
    first system that beats it."""
    out: dict[str, str] = {}
    for s in summaries:
        for o in summaries:
            if o is not s and o.quality >= s.quality and o.cost_usd <= s.cost_usd and (
                    o.quality > s.quality or o.cost_usd < s.cost_usd):
                out[s.system] = o.system
                break
    return out


def recommend(summaries: Sequence[Summary], tolerance: float = 0.01) -> tuple[str, str]:
    """Never a dominated system: drop every system another beats on quality and cost,
    then take the simplest (then the cheapest) within ``tolerance`` of the best quality
    left; and one line saying why."""
    if not summaries:
        raise ValueError("nothing to recommend from")
    beaten = dominated(summaries)
    front = [s for s in summaries if s.system not in beaten] or list(summaries)
    best = max(front, key=lambda s: (s.quality, -s.cost_usd))
    near = [s for s in front if s.quality >= best.quality - tolerance]
    rank: dict[str, int] = {k: i for i, k in enumerate(COMPLEXITY)}
    pick = min(near, key=lambda s: (rank.get(s.kind, len(rank)), s.cost_usd))
    dropped = f"; {len(beaten)} dominated system(s) left out" if beaten else ""
    if pick.system == best.system:
        why = (f"{pick.system} ({pick.kind}) has the best quality, {best.quality:.3f}, "
               f"at ${pick.cost_usd:.4g}, and nothing within {tolerance:g} of it is "
               f"simpler{dropped}")
    else:
        simpler = rank.get(pick.kind, len(rank)) < rank.get(best.kind, len(rank))
        why = (f"{pick.system} ({pick.kind}, quality {pick.quality:.3f}, "
               f"${pick.cost_usd:.4g}) is within {tolerance:g} of the best, {best.system} "
               f"({best.kind}, {best.quality:.3f}, ${best.cost_usd:.4g}), and "
               f"{'simpler' if simpler else 'cheaper'}{dropped}")
    return pick.system, why


_HEADERS = ["system", "kind", "quality", "95% CI", "cost $", "$/item", "p50 s", "p95 s",
            "calls/item", "errors"]


def _row(s: Summary) -> list[str]:
    return [s.system, s.kind, f"{s.quality:.3f}", f"{s.quality_low:.3f}-{s.quality_high:.3f}",
            f"{s.cost_usd:.4g}", f"{s.cost_per_item_usd:.3g}", f"{s.latency_p50_s:.3f}",
            f"{s.latency_p95_s:.3f}", f"{s.calls_per_item:.2f}", str(s.errors)]


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[str(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    out = []
    for n, row in enumerate(cells):
        out.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def text_table(summaries: Sequence[Summary]) -> str:
    return table(_HEADERS, [_row(s) for s in summaries])


def markdown(summaries: Sequence[Summary], *, title: str = "", note: str = "") -> str:
    lines = [f"## {title}", ""] if title else []
    lines += ["| " + " | ".join(_HEADERS) + " |", "|" + "---|" * len(_HEADERS)]
    lines += ["| " + " | ".join(_row(s)) + " |" for s in summaries]
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def to_csv(summaries: Sequence[Summary]) -> str:
    buf = io.StringIO()
    fields = list(Summary.__dataclass_fields__)
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for s in summaries:
        w.writerow(asdict(s))
    return buf.getvalue()


def to_json(summaries: Sequence[Summary], extra: Mapping[str, Any] | None = None) -> str:
    rows = [asdict(s) for s in summaries]
    for r in rows:
        r.update(extra or {})
    return json.dumps(rows, indent=2) + "\n"


def plot(points: Sequence[tuple[str, float, float]], path: str | Path, *, title: str,
         frontier: Sequence[str] = (), xlabel: str = "total cost (USD)",
         line: bool = False) -> Path:
    """Quality vs cost; ``points`` are (label, cost, quality). With ``line`` the points
    are one curve; else labelled dots with ``frontier`` joined and marked."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise MissingDependency("matplotlib", "the cost-vs-quality plot", "eval") from exc
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    if line:
        ax.plot([p[1] for p in points], [p[2] for p in points], marker=".", label="router")
    else:
        for label, x, y in points:
            on = label in frontier
            ax.scatter([x], [y], color="tab:red" if on else "tab:blue", zorder=3)
            ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        front = [p for p in points if p[0] in frontier]
        front.sort(key=lambda p: p[1])
        if front:
            ax.plot([p[1] for p in front], [p[2] for p in front], color="tab:red",
                    linestyle="--", label="Pareto frontier")
            ax.legend(loc="lower right")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("quality")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out
