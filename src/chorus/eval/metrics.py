"""Router metrics on a quality-vs-cost curve (pure functions).

A router with a cost knob gives a curve of points (total cost, mean quality). With N
models, ``weak`` is the cheapest single model and ``strong`` the best one (the cheaper
on a tie). ``x = cost / strong.cost`` is the cost as a share of always calling the strong
model; ``PGR = (quality - weak.quality) / (strong.quality - weak.quality)`` is the share
of the quality gap recovered (RouteLLM, Ong et al. 2024; with two models and a nearly free
weak model, x is RouteLLM's share of calls to the strong model).

- APGR: the area under PGR(x) for x in [0, 1]; PGR is linear between the curve's points
  and flat beyond its first and last one. A random router scores about 0.5.
- CPT(p): the smallest x at which PGR(x) reaches p (None when it never does).
- AIQ (RouterBench, Hu et al. 2024): the mean quality over a cost range under the
  non-decreasing upper convex hull of the points (interpolating between two knob settings
  is always possible by flipping a coin; spending more need never do worse).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from math import inf

__all__ = [
    "Point",
    "Curve",
    "RouterMetrics",
    "pgr",
    "apgr",
    "cpt",
    "hull",
    "aiq",
    "weak_and_strong",
    "router_metrics",
    "random_curve",
]


@dataclass(frozen=True, slots=True)
class Point:
    cost_usd: float
    quality: float
    knob: float | None = None


Curve = Sequence[Point]


def pgr(quality: float, weak: Point, strong: Point) -> float:
    gap = strong.quality - weak.quality
    if gap <= 0:
        raise ValueError("the strong model must score above the weak one to measure a gap")
    return (quality - weak.quality) / gap


def _pgr_points(curve: Curve, weak: Point, strong: Point) -> list[tuple[float, float]]:
    if not curve:
        raise ValueError("the curve has no points")
    if strong.cost_usd <= 0:
        raise ValueError("the strong model's cost must be > 0")
    pts = sorted((p.cost_usd / strong.cost_usd, pgr(p.quality, weak, strong)) for p in curve)
    return pts


def _at(pts: Sequence[tuple[float, float]], x: float) -> float:
    if x <= pts[0][0]:
        return pts[0][1]
    if x >= pts[-1][0]:
        return pts[-1][1]
    i = max(1, bisect_left(pts, (x, -inf)))  # pts[i - 1].x < x <= pts[i].x
    (x0, y0), (x1, y1) = pts[i - 1], pts[i]
    return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def _area(pts: Sequence[tuple[float, float]], lo: float, hi: float) -> float:
    """The integral of the piecewise-linear function through ``pts`` (flat beyond its
    ends) from ``lo`` to ``hi``."""
    xs = sorted({lo, hi, *(x for x, _ in pts if lo < x < hi)})
    return sum((b - a) * (_at(pts, a) + _at(pts, b)) / 2 for a, b in zip(xs, xs[1:],
                                                                            strict=False))


def apgr(curve: Curve, weak: Point, strong: Point) -> float:
    """Average performance gap recovered over cost shares 0..1 (see the module doc)."""
    return _area(_pgr_points(curve, weak, strong), 0.0, 1.0)


def cpt(curve: Curve, weak: Point, strong: Point, target: float) -> float | None:
    """Cost (share of the strong model's) to recover ``target`` of the gap, or None."""
    pts = _pgr_points(curve, weak, strong)
    prev: tuple[float, float] | None = None
    for x, y in pts:
        if y >= target:
            if prev is None or prev[1] >= y:
                return x
            x0, y0 = prev
            return x0 + (target - y0) / (y - y0) * (x - x0)
        prev = (x, y)
    return None


def hull(curve: Curve) -> list[Point]:
    """The non-decreasing upper convex hull of the points, cheapest first."""
    pts = sorted(curve, key=lambda p: (p.cost_usd, -p.quality))
    upper: list[Point] = []
    for p in pts:
        if upper and p.cost_usd == upper[-1].cost_usd:
            continue  # same cost, lower quality (sorted best first)
        while len(upper) >= 2:
            a, b = upper[-2], upper[-1]
            cross = ((b.cost_usd - a.cost_usd) * (p.quality - a.quality)
                     - (b.quality - a.quality) * (p.cost_usd - a.cost_usd))
            if cross >= 0:  # b lies on or below the segment a-p
                upper.pop()
            else:
                break
        upper.append(p)
    best = max(range(len(upper)), key=lambda i: (upper[i].quality, -i)) if upper else 0
    return upper[: best + 1]


def aiq(curve: Curve, cost_min: float | None = None, cost_max: float | None = None) -> float:
    """Mean quality under the non-decreasing convex hull over [cost_min, cost_max]
    (default: the points' own cost range); flat beyond the hull's ends."""
    h = hull(curve)
    if not h:
        raise ValueError("the curve has no points")
    lo = h[0].cost_usd if cost_min is None else cost_min
    hi = max(p.cost_usd for p in curve) if cost_max is None else cost_max
    pts = [(p.cost_usd, p.quality) for p in h]
    if hi <= lo:
        return _at(pts, lo)
    return _area(pts, lo, hi) / (hi - lo)


def weak_and_strong(singles: Mapping[str, Point]) -> tuple[str, str]:
    """The cheapest model (weak) and the best one (strong; the cheaper on a tie)."""
    if len(singles) < 2:
        raise ValueError("router metrics need at least two models")
    weak = min(singles, key=lambda m: (singles[m].cost_usd, -singles[m].quality))
    strong = max(singles, key=lambda m: (singles[m].quality, -singles[m].cost_usd))
    return weak, strong


@dataclass(frozen=True, slots=True)
class RouterMetrics:
    apgr: float
    cpt50: float | None
    cpt80: float | None
    aiq: float
    weak: str
    strong: str


def router_metrics(curve: Curve, singles: Mapping[str, Point]) -> RouterMetrics:
    """APGR, CPT(50 %), CPT(80 %) and AIQ (over the single models' cost range)."""
    weak, strong = weak_and_strong(singles)
    w, s = singles[weak], singles[strong]
    lo = min(p.cost_usd for p in singles.values())
    hi = max(p.cost_usd for p in singles.values())
    return RouterMetrics(apgr(curve, w, s), cpt(curve, w, s, 0.5), cpt(curve, w, s, 0.8),
                         aiq(curve, lo, hi), weak, strong)


def random_curve(weak: Point, strong: Point, steps: int = 11) -> list[Point]:
    """The expected curve of a router that calls the strong model with probability p."""
    return [Point(weak.cost_usd + p * (strong.cost_usd - weak.cost_usd),
                  weak.quality + p * (strong.quality - weak.quality), p)
            for p in (i / (steps - 1) for i in range(steps))]
