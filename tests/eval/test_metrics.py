"""Router metrics on hand-computed cases."""

from __future__ import annotations

import pytest

from chorus.eval.metrics import (
    Point,
    aiq,
    apgr,
    cpt,
    hull,
    pgr,
    random_curve,
    router_metrics,
    weak_and_strong,
)

WEAK, STRONG = Point(0.0, 0.5), Point(1.0, 0.7)
# PGR 0 at x=0, 0.75 at x=0.5, 1 at x=1.
CURVE = [Point(0.0, 0.5), Point(0.5, 0.65), Point(1.0, 0.7)]


def test_pgr() -> None:
    assert pgr(0.6, WEAK, STRONG) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="gap"):
        pgr(0.6, STRONG, STRONG)


def test_apgr_trapezoids() -> None:
    # 0.5 * (0 + 0.75) / 2 + 0.5 * (0.75 + 1) / 2 = 0.1875 + 0.4375
    assert apgr(CURVE, WEAK, STRONG) == pytest.approx(0.625)
    # A random router is the diagonal: 0.5.
    assert apgr(random_curve(WEAK, STRONG), WEAK, STRONG) == pytest.approx(0.5)
    # Flat beyond the last point: PGR 1 reached at x=0.5 stays 1 up to x=1.
    early = [Point(0.0, 0.5), Point(0.5, 0.7)]
    assert apgr(early, WEAK, STRONG) == pytest.approx(0.25 + 0.5)


def test_cpt_interpolates_between_points() -> None:
    assert cpt(CURVE, WEAK, STRONG, 0.5) == pytest.approx(0.5 * 0.5 / 0.75)
    assert cpt(CURVE, WEAK, STRONG, 0.8) == pytest.approx(0.5 + 0.5 * 0.05 / 0.25)
    assert cpt(CURVE[:2], WEAK, STRONG, 0.8) is None
    # Cost is a share of the strong model's cost, whatever its scale.
    scaled = [Point(p.cost_usd * 40, p.quality) for p in CURVE]
    assert cpt(scaled, WEAK, Point(40.0, 0.7), 0.5) == pytest.approx(1 / 3)


def test_hull_is_concave_and_non_decreasing() -> None:
    pts = [Point(0, 0), Point(1, 0.2), Point(2, 1), Point(3, 0.9), Point(2, 0.5)]
    assert [(p.cost_usd, p.quality) for p in hull(pts)] == [(0, 0), (2, 1)]


def test_aiq() -> None:
    # Hull (0,0)-(1,1), flat at 1 up to cost 2: area 0.5 + 1 over a range of 2.
    assert aiq([Point(0, 0), Point(1, 1), Point(2, 0.5)]) == pytest.approx(0.75)
    # (1, 0.2) lies under the hull line (0,0)-(2,1): area 1 over 2.
    assert aiq([Point(0, 0), Point(1, 0.2), Point(2, 1)]) == pytest.approx(0.5)
    # A wider range extends the hull flat at its ends.
    assert aiq([Point(1, 0.5), Point(2, 0.7)], 0, 4) == pytest.approx(
        (0.5 * 1 + 0.6 * 1 + 0.7 * 2) / 4)


def test_weak_strong_and_summary() -> None:
    singles = {"cheap": Point(1, 0.5), "mid": Point(5, 0.6), "best": Point(10, 0.7),
               "pricey": Point(20, 0.7)}
    assert weak_and_strong(singles) == ("cheap", "best")
    m = router_metrics([Point(1, 0.5), Point(5, 0.65), Point(10, 0.7)], singles)
    assert (m.weak, m.strong) == ("cheap", "best")
    assert m.cpt50 is not None and 0.1 < m.cpt50 < 0.5
    assert 0.5 < m.aiq < 0.7
    with pytest.raises(ValueError, match="two models"):
        weak_and_strong({"one": Point(1, 1)})
