from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from chorus.eval.bench import ItemResult
from chorus.eval.report import (
    Summary,
    bootstrap,
    dominated,
    markdown,
    pareto,
    percentile,
    plot,
    recommend,
    summarise,
    to_csv,
    to_json,
    wilson,
)


def test_wilson_known_values() -> None:
    low, high = wilson(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)


def test_bootstrap_brackets_the_mean() -> None:
    values = [0.2, 0.4, 0.6, 0.8] * 10
    low, high = bootstrap(values)
    assert low < 0.5 < high and bootstrap(values) == (low, high)


def test_percentile() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([1, 2, 3, 4, 5], 95) == pytest.approx(4.8)


def _s(name: str, kind: str, q: float, cost: float) -> Summary:
    return Summary(name, kind, 10, q, q - 0.1, q + 0.1, cost, cost / 10, 0.1, 0.2, 1.0, 0)


def test_summarise_counts_errors_calls_and_cost() -> None:
    rs = [ItemResult("s", "1", 1.0, 0.01, 0.1, 3), ItemResult("s", "2", 0.0, 0.02, 0.3, 1,
                                                              error="boom"),
          ItemResult("s", "3", None, 0.0, 0.2, 1)]
    s = summarise("s", "parallel", rs)
    assert s.quality == 0.5 and s.errors == 1 and s.calls_per_item == pytest.approx(5 / 3)
    assert s.cost_usd == pytest.approx(0.03) and s.latency_p50_s == pytest.approx(0.2)


def test_recommend_prefers_simpler_within_tolerance() -> None:
    ss = [_s("vote", "parallel", 0.72, 3.0), _s("one", "single", 0.715, 1.0),
          _s("cheap", "single", 0.60, 0.1), _s("ens", "ensemble", 0.73, 9.0)]
    name, why = recommend(ss, 0.02)
    assert name == "one" and why.endswith("(ensemble, 0.730, $9), and simpler")
    # Of two of one kind within tolerance, the cheaper one, and the line says so.
    name, why = recommend([_s("c1", "sequential", 0.80, 2.0),
                           _s("c2", "sequential", 0.805, 2.2)], 0.01)
    assert name == "c1" and why.endswith("(sequential, 0.805, $2.2), and cheaper")
    assert recommend(ss, 0.001)[0] == "ens"
    assert recommend(ss, 0.011)[0] == "vote"
    assert pareto(ss) == ["cheap", "one", "vote", "ens"]


def test_recommend_never_picks_a_dominated_system() -> None:
    # The first-run report: pro was recommended while two systems beat it on both counts.
    ss = [_s("pro", "single", 0.743, 0.1097), _s("flash", "single", 0.63, 0.01),
          _s("vote3", "parallel", 0.740, 0.16), _s("consensus", "ensemble", 0.750, 0.0858),
          _s("routed", "sequential", 0.747, 0.0452)]
    name, why = recommend(ss, 0.01)
    assert name == "routed"
    assert "within 0.01 of the best, consensus" in why and "2 dominated" in why
    assert "\n" not in why
    assert dominated(ss) == {"pro": "consensus", "vote3": "pro"}
    # With a tight tolerance the best one stands, still not a dominated one.
    assert recommend(ss, 0.001)[0] == "consensus"
    # Every pick, at every tolerance, is one that nothing beats.
    for tol in (0.0, 0.005, 0.01, 0.05, 0.2):
        assert recommend(ss, tol)[0] not in dominated(ss)
    # Equal systems do not dominate each other.
    twins = [_s("a", "single", 0.7, 1.0), _s("b", "parallel", 0.7, 1.0)]
    assert dominated(twins) == {} and recommend(twins)[0] == "a"


def test_outputs(tmp_path: Path) -> None:
    ss = [_s("a", "single", 0.5, 1.0), _s("b", "parallel", 0.7, 2.0)]
    rows = json.loads(to_json(ss))
    assert {"system", "quality", "cost_usd", "latency_p50_s", "errors"} <= set(rows[0])
    assert list(csv.DictReader(io.StringIO(to_csv(ss))))[1]["system"] == "b"
    assert markdown(ss).count("\n|") == 3
    png = plot([(s.system, s.cost_usd, s.quality) for s in ss], tmp_path / "p.png",
               title="t", frontier=pareto(ss))
    assert png.read_bytes()[:4] == b"\x89PNG"
