"""Learned routers on a synthetic task where the right choice is known: the cheap model
is right on one cluster of prompts only, the costly one on both."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chorus.config.builder import Config
from chorus.core.errors import ConfigError
from chorus.core.types import Request
from chorus.eval.outcomes import Outcome, OutcomeItem
from chorus.eval.routers import evaluate_router, fit_router
from chorus.patterns.router import Router
from chorus.routing.learned import (
    LearnedClassifier,
    choose,
    curve_points,
    fit,
    knob_grid,
    sweep,
)
from chorus.routing.predictor import OutcomePredictor
from tests.patterns._fakes import TableEmbedder


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, 2, n)
    centres = np.eye(8)[[0, 1]]
    x = centres[cluster] + rng.normal(0, 0.15, (n, 8))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    cheap = (cluster == 0).astype(float)
    big = (rng.random(n) < 0.95).astype(float)
    scores = np.stack([cheap, big], axis=1)
    costs = np.tile([1.0, 10.0], (n, 1))
    return x, scores, costs, cluster


@pytest.mark.parametrize("kind", ["knn", "mlp", "mf"])
def test_each_kind_learns_the_clusters(kind: str) -> None:
    x, scores, costs, cluster = _data(400, 0)
    router = fit(x, scores, costs, ["cheap", "big"], kind=kind, seed=1, epochs=60)  # type: ignore[arg-type]
    xt, st, _, ct = _data(200, 1)
    pred = router.predict(xt)
    assert pred.shape == (200, 2)
    # The cheap model is predicted good on cluster 0 and bad on cluster 1.
    assert pred[ct == 0, 0].mean() > 0.8 and pred[ct == 1, 0].mean() < 0.2
    picks = choose(pred, router.relative_costs(), router.willingness_to_pay)
    # At the calibrated knob: cheap on cluster 0, big on cluster 1, nearly always.
    assert (picks == ct).mean() > 0.9
    assert router.calibration and router.calibration[0].lam == 0.0


def test_knob_extremes_and_grid() -> None:
    pred = np.array([[0.9, 0.95], [0.1, 0.9]])
    rel = np.array([0.1, 1.0])
    assert list(choose(pred, rel, 0.0)) == [1, 1]
    assert list(choose(pred, rel, float("inf"))) == [0, 0]
    grid = knob_grid(pred, rel)
    assert grid[0] == 0.0 and list(choose(pred, rel, grid[-1])) == [0, 0]
    assert len(grid) == 3  # both on the big model, the hard one only, both on the cheap
    # Between the two break-evens (0.05/0.9 and 0.8/0.9) only the hard item goes up.
    assert list(choose(pred, rel, 0.5)) == [0, 1]


def test_the_sweep_visits_every_decision_and_matches_choose() -> None:
    rng = np.random.default_rng(5)
    pred = rng.random((60, 5))
    pred[:5] = pred[5:10]  # repeated rows: changes at the same λ
    rel = np.array([0.01, 0.3, 0.3, 0.7, 1.0])  # two models at one price
    scores, costs = rng.random((60, 5)), rng.random((60, 5)) * rel[None, :]
    points = sweep(pred, rel, scores, costs)
    knobs = [lam for lam, _, _ in points]
    assert knobs == sorted(knobs) and knobs[0] == 0.0 and knobs == knob_grid(pred, rel)
    seen = {tuple(choose(pred, rel, lam)) for lam in knobs}
    assert len(seen) == len(knobs)  # each knob a distinct decision
    for lam, cost, quality in points:
        assert (cost, quality) == pytest.approx(curve_points(choose(pred, rel, lam),
                                                            scores, costs))
    # No decision between two knobs is left out: a dense scan finds none that is new.
    dense = np.concatenate([np.linspace(0, knobs[-1] * 1.5, 3000)])
    assert {tuple(choose(pred, rel, float(lam))) for lam in dense} <= seen
    assert tuple(choose(pred, rel, knobs[-1])) == tuple(choose(pred, rel, float("inf")))


def _priced_rows(n: int, seed: int) -> tuple[np.ndarray, list[OutcomeItem]]:
    """Four models at four prices: the cheapest is nearly always wrong, the others right
    60 / 70 / 80 % of the time, each better on its own cluster of prompts."""
    rng = np.random.default_rng(seed)
    names, price = ["tiny", "mid", "large", "top"], [1.0, 40.0, 70.0, 100.0]
    cluster = rng.integers(0, 3, n)
    x = np.eye(8)[cluster] + rng.normal(0, 0.5, (n, 8))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    p = np.array([[0.05, 0.75, 0.6, 0.8], [0.05, 0.5, 0.85, 0.8],
                  [0.05, 0.55, 0.65, 0.8]])[cluster]
    right = rng.random((n, 4)) < p
    rows = [OutcomeItem(str(i), f"p{i}", None, None,
                        {m: Outcome(float(right[i, j]), price[j] / 1000)
                         for j, m in enumerate(names)}) for i in range(n)]
    return x, rows


def test_the_curve_has_no_gap_between_the_strong_model_and_the_middle_ones() -> None:
    # The knob used to sweep each row's break-even against the cheapest model only: the
    # decisions among the costlier models were never visited, and the curve jumped from
    # the strongest model's cost straight to a fraction of it.
    x, rows = _priced_rows(600, 0)
    router = fit_router(rows, x, kind="knn", k=50)
    xt, test = _priced_rows(400, 1)
    ev = evaluate_router(router, test, xt)
    strong = ev.singles[ev.metrics.strong].cost_usd
    costs = sorted(p.cost_usd for p in ev.curve)
    assert costs[-1] > 0.6 * strong and costs[0] < 0.05 * strong
    assert max(b - a for a, b in zip(costs, costs[1:], strict=False)) <= 0.02 * strong
    # Calibration reads the same sweep: the table spans the same range without gaps.
    shares = sorted(c.cost_share for c in router.calibration)
    assert max(b - a for a, b in zip(shares, shares[1:], strict=False)) <= 0.05


def _rows(x: np.ndarray, scores: np.ndarray, costs: np.ndarray) -> list[OutcomeItem]:
    return [OutcomeItem(str(i), f"p{i}", None, None,
                        {m: Outcome(float(scores[i, j]), float(costs[i, j]))
                         for j, m in enumerate(["cheap", "big"])}) for i in range(len(x))]


def test_evaluate_beats_random_and_round_trips(tmp_path: Path) -> None:
    x, s, c, _ = _data(300, 2)
    router = fit_router(_rows(x, s, c), x, kind="knn")
    xt, st, ctst, _ = _data(200, 3)
    ev = evaluate_router(router, _rows(xt, st, ctst), xt)
    assert (ev.metrics.weak, ev.metrics.strong) == ("cheap", "big")
    assert ev.metrics.apgr > ev.random.apgr + 0.2
    assert ev.metrics.cpt50 is not None and ev.metrics.cpt50 < 0.7
    assert ev.metrics.aiq > ev.random.aiq
    d = ev.to_dict()
    assert {"apgr", "cpt50", "cpt80", "aiq", "curve"} <= set(d)
    assert all(set(p) >= {"cost_usd", "quality"} for p in d["curve"])
    router.save(tmp_path / "r")
    again = OutcomePredictor.load(tmp_path / "r")
    assert np.allclose(again.predict(xt), router.predict(xt))
    assert again.willingness_to_pay == router.willingness_to_pay
    assert (again.calibration, again.training, again.models) == (
        router.calibration, router.training, router.models)
    by_knob = {c.lam: c for c in again.calibration}
    assert by_knob[again.knob_for_share(1.0)].quality == max(
        c.quality for c in again.calibration)
    assert by_knob[again.knob_for_share(0.1)].cost_share <= 0.1 + 1e-9
    with pytest.raises(ValueError, match="not a saved router"):
        OutcomePredictor.load(tmp_path / "none")


def _clusters(n_clusters: int, per: int, p_right: float, seed: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tight clusters on random directions; the cheap model is right with ``p_right`` on
    even clusters and ``1 - p_right`` on odd ones, the costly one always."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (n_clusters, 32))
    label = np.repeat(np.arange(n_clusters), per)
    x = centres[label] + rng.normal(0, 0.05, (len(label), 32))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    p = np.where(label % 2 == 0, p_right, 1 - p_right)
    cheap = (rng.random(len(label)) < p).astype(float)
    scores = np.stack([cheap, np.ones(len(label))], axis=1)
    return x, scores, np.tile([1.0, 10.0], (len(label), 1))


def test_knn_picks_k_on_the_held_out_split() -> None:
    # Many small clusters whose answers alternate: few neighbours, or the vote blurs them.
    x, s, c = _clusters(60, 10, 1.0, 0)
    fine = fit(x, s, c, ["cheap", "big"], seed=0)
    assert fine.scorer.k <= 20  # type: ignore[union-attr]
    # 480 training items: k up to a tenth of them.
    assert set(fine.training.k_chosen_from) == {10, 20}
    # Two clusters and noisy outcomes: many neighbours average the noise away.
    x, s, c = _clusters(2, 400, 0.7, 1)
    coarse = fit(x, s, c, ["cheap", "big"], seed=0)
    assert coarse.scorer.k == 50  # type: ignore[union-attr]
    assert set(coarse.training.k_chosen_from) == {10, 20, 50}
    # A given k is kept as is; without a held-out split the default is 20.
    assert fit(x, s, c, ["cheap", "big"], k=7).scorer.k == 7  # type: ignore[union-attr]
    assert fit(x, s, c, ["cheap", "big"], holdout=0).scorer.k == 20  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="k must be"):
        fit(x, s, c, ["cheap", "big"], k=0)


def test_fit_rejects_one_model_and_tiny_tables() -> None:
    x, s, c, _ = _data(50, 4)
    with pytest.raises(ValueError, match="two models"):
        fit(x, s[:, :1], c[:, :1], ["one"])
    with pytest.raises(ValueError, match="at least 10"):
        fit(x[:5], s[:5], c[:5], ["a", "b"])


async def test_classifier_in_a_router_and_from_yaml(tmp_path: Path) -> None:
    from chorus.providers.scripted import ScriptedModel

    x, s, c, cluster = _data(300, 5)
    router = fit(x, s, c, ["cheap", "big"], kind="knn")
    router.save(tmp_path / "r")
    emb = TableEmbedder({"easy": np.eye(8)[0], "hard": np.eye(8)[1]})
    clf = LearnedClassifier(router, emb, labels={"cheap": "small"})
    r = Router("r", clf, {"small": ScriptedModel("s", default="S"),
                          "big": ScriptedModel("b", default="B")}, default="big")
    assert (await r.complete(Request.of("easy"))).text == "S"
    hard = await r.complete(Request.of("hard"))
    assert hard.text == "B" and hard.trace is not None
    assert hard.trace.attributes["classifier"] == "learned"
    assert set(hard.trace.attributes["scores"]) == {"small", "big"}
    always_big = LearnedClassifier(router, emb, willingness_to_pay=0.0)
    assert (await always_big.classify(Request.of("easy"))).label in ("big", "cheap")

    cfg = Config.from_text(
        "models:\n  cheap: {provider: scripted, default: C}\n"
        "  big: {provider: scripted, default: B}\n"
        "systems:\n  routed:\n    kind: router\n"
        f"    classifier: {{type: learned, path: '{tmp_path / 'r'}', cost_share: 0.5}}\n"
        "    routes: {cheap: cheap, big: big}\n    default: big\n")
    built = cfg.get("routed")
    assert isinstance(built, Router) and isinstance(built.classifier, LearnedClassifier)
    built.classifier.embedder = emb
    assert (await built.complete(Request.of("easy"))).text == "C"
    bad = Config.from_text(
        "models:\n  a: {provider: scripted, default: A}\n"
        "systems:\n  r: {kind: router, classifier: {type: learned, path: /nonexistent},"
        " routes: {a: a}, default: a}\n")
    with pytest.raises(ConfigError, match="not a saved router"):
        bad.get("r")


def test_the_measure_in_calls_is_routellms() -> None:
    # RouteLLM's APGR and CPT count calls to the strong model, whatever each prompt costs;
    # the dollar measure weighs a long prompt's call more. By calls must equal a direct
    # computation: route the items in order of how much more the strong model is
    # predicted to get right (only those where it is predicted better, as the router's
    # knob at 0 does), the gap recovered after each, the area under it over the share of
    # calls, flat after the last.
    from chorus.eval.metrics import RouterMetrics
    from chorus.eval.routers import by_calls

    rng = np.random.default_rng(7)
    n = 500
    pred = rng.random((n, 2))
    scores = (rng.random((n, 2)) < np.stack([0.3 + 0.4 * pred[:, 0],
                                             0.2 + 0.7 * pred[:, 1]], axis=1)).astype(float)
    got = by_calls(pred, np.array([0.05, 1.0]), scores, ["cheap", "big"],
                   RouterMetrics(0.0, None, None, 0.0, "cheap", "big"))
    qw, qs = scores[:, 0].mean(), scores[:, 1].mean()
    d = pred[:, 1] - pred[:, 0]
    order = [i for i in np.argsort(-d) if d[i] > 0]
    xs, ys, q = [0.0], [0.0], qw
    for k, i in enumerate(order, 1):
        q += (scores[i, 1] - scores[i, 0]) / n
        xs.append(k / n)
        ys.append((q - qw) / (qs - qw))
    want = float(np.trapezoid(ys, xs)) + ys[-1] * (1 - xs[-1])
    assert got.apgr == pytest.approx(want, abs=1e-9)
    assert (got.weak, got.strong) == ("cheap", "big")
    half = next(x for x, y in zip(xs, ys, strict=True) if y >= 0.5)
    assert got.cpt50 is not None and abs(got.cpt50 - half) <= 1 / n


def test_evaluate_reports_both_measures() -> None:
    x, s, c, _ = _data(300, 2)
    router = fit_router(_rows(x, s, c), x, kind="knn")
    xt, st, ctst, _ = _data(200, 3)
    ctst[:, 1] *= np.linspace(0.2, 5.0, len(ctst))  # prompts of very different prices
    ev = evaluate_router(router, _rows(xt, st, ctst), xt)
    assert (ev.calls.weak, ev.calls.strong) == (ev.metrics.weak, ev.metrics.strong)
    assert ev.calls.apgr != pytest.approx(ev.metrics.apgr, abs=1e-3)
    assert ev.to_dict()["by_calls"] == {"apgr": ev.calls.apgr, "cpt50": ev.calls.cpt50,
                                        "cpt80": ev.calls.cpt80}
