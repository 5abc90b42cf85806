"""A learned router that prices each call by its prompt's length, where the table shows
that a long prompt costs more: the strong model's price grows with the prompt, the weak
one's hardly, and the strong model gains as much on a short prompt as on a long one. So
a router at the models' mean costs pays for long prompts what it could have spent on
many short ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chorus.core.types import Request
from chorus.eval.outcomes import Outcome, OutcomeItem
from chorus.eval.routers import evaluate_router, fit_router
from chorus.routing.learned import LearnedClassifier, choose, curve_points, knob_grid, sweep
from chorus.routing.predictor import OutcomePredictor, PriceByLength
from tests.patterns._fakes import TableEmbedder


def _rows(n: int, seed: int, *, flat: bool = False) -> tuple[np.ndarray, list[OutcomeItem]]:
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, 2, n)
    x = np.eye(8)[cluster] + rng.normal(0, 0.3, (n, 8))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    chars = rng.integers(50, 5000, n)
    weak_right = rng.random(n) < np.where(cluster == 0, 0.7, 0.3)
    strong_right = rng.random(n) < 0.9
    rows = []
    for i in range(n):
        strong_cost = 0.01 if flat else 0.01 * chars[i] / 1000   # $10 per million chars
        rows.append(OutcomeItem(str(i), "x" * int(chars[i]), None, None, {
            "weak": Outcome(float(weak_right[i]), 0.0001),
            "strong": Outcome(float(strong_right[i]), float(strong_cost))}))
    return x, rows


def test_the_price_line_is_fitted_per_model_and_never_falls() -> None:
    chars = np.array([100.0, 200.0, 300.0, 400.0])
    costs = np.array([[1.0, 5.0, np.nan], [2.0, 4.0, 1.0], [3.0, 3.0, 1.0], [4.0, 2.0, 1.0]])
    price = PriceByLength.fit(chars, costs)
    assert price.per_char[0] == pytest.approx(0.01) and price.base[0] == pytest.approx(0.0)
    # Cost falling with the prompt is taken for noise: flat at the model's mean.
    assert price.per_char[1] == 0.0 and price.base[1] == pytest.approx(3.5)
    assert price.per_char[2] == 0.0 and price.base[2] == pytest.approx(1.0)  # NaN left out
    np.testing.assert_allclose(price.costs([250.0, 0.0]), [[2.5, 3.5, 1.0],
                                                           [0.0, 3.5, 1.0]], atol=1e-12)


def test_the_sweep_visits_every_decision_with_a_price_per_item() -> None:
    rng = np.random.default_rng(3)
    pred = rng.random((50, 4))
    rel = rng.random((50, 4)) * np.array([0.05, 0.3, 0.6, 1.0])
    rel[:4] = rel[4:8]
    pred[:4] = pred[4:8]  # repeated rows change at the same λ
    scores, costs = rng.random((50, 4)), rel * 3.0
    points = sweep(pred, rel, scores, costs)
    knobs = [lam for lam, _, _ in points]
    assert knobs == sorted(knobs) and knobs[0] == 0.0 and knobs == knob_grid(pred, rel)
    seen = {tuple(choose(pred, rel, lam)) for lam in knobs}
    assert len(seen) == len(knobs)
    for lam, cost, quality in points:
        assert (cost, quality) == pytest.approx(curve_points(choose(pred, rel, lam),
                                                            scores, costs))
    dense = np.linspace(0, knobs[-1] * 1.5, 4000)
    assert {tuple(choose(pred, rel, float(lam))) for lam in dense} <= seen
    assert tuple(choose(pred, rel, knobs[-1])) == tuple(choose(pred, rel, float("inf")))


async def test_a_router_prices_long_prompts_dearer_and_reaches_more_for_the_money(
        tmp_path: Path) -> None:
    x, rows = _rows(800, 0)
    router = fit_router(rows, x, kind="knn", k=50)
    assert router.price_by_length is not None
    chosen = router.training.price_chosen_from
    assert chosen["by_length"] > chosen["mean"]
    # On new prompts, against the same router at the models' mean costs.
    xt, test = _rows(600, 1)
    by_length = evaluate_router(router, test, xt).metrics
    at_means = evaluate_router(OutcomePredictor(
        router.models, router.scorer, router.costs, router.willingness_to_pay,
        router.calibration, router.training), test, xt).metrics
    assert by_length.apgr > at_means.apgr + 0.03, (by_length, at_means)
    # Saved and loaded, it prices the same; live, the prompt's own length decides: the
    # same question (the same embedding) goes to the strong model short, to the weak long.
    router.save(tmp_path / "r")
    loaded = OutcomePredictor.load(tmp_path / "r")
    assert loaded.price_by_length is not None
    np.testing.assert_allclose(loaded.relative_costs([100, 4000]),
                               router.relative_costs([100, 4000]))
    emb = TableEmbedder({"x" * 100: np.eye(8)[1], "x" * 4900: np.eye(8)[1]})
    rel = loaded.relative_costs([100, 4900])
    pred = loaded.predict(np.eye(8)[[1]])
    lam = float(np.mean([(pred[0, 1] - pred[0, 0]) / (rel[i, 1] - rel[i, 0])
                         for i in (0, 1)]))  # between the two prompts' break-evens
    clf = LearnedClassifier(loaded, emb, willingness_to_pay=lam)
    short = await clf.classify(Request.of("x" * 100))
    long = await clf.classify(Request.of("x" * 4900))
    assert (short.label, long.label) == ("strong", "weak")
    # Each says the relative cost of its own prompt's call.
    assert short.reason.endswith(f"relative cost {rel[0, 1]:.3f}")
    assert long.reason.endswith(f"relative cost {rel[1, 0]:.3f}")


def test_no_price_by_length_where_a_call_costs_the_same_whatever_the_prompt() -> None:
    x, rows = _rows(400, 2, flat=True)
    router = fit_router(rows, x, kind="knn", k=50)
    assert router.price_by_length is None and not router.training.price_chosen_from
    assert router.relative_costs([100, 4000]).shape == (2,)  # one row of mean costs


def test_the_old_class_name_loads_a_priced_router_priced(tmp_path: Path) -> None:
    import warnings

    import chorus.routing.learned as learned

    x, rows = _rows(400, 3)
    router = fit_router(rows, x, kind="knn", k=50)
    assert router.price_by_length is not None
    router.save(tmp_path / "r")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = learned.LearnedRouter.load(tmp_path / "r")
    assert old.price_by_length is not None
    np.testing.assert_allclose(old.relative_costs([100, 4000]),
                               router.relative_costs([100, 4000]))
