"""Learning from real outcomes: a learned router's statistics and a weighted ensemble's
weights, moved by ``record_outcome`` and by ``chorus feedback``; an offline replay of
recorded outcomes shows both converging toward the better models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from chorus.cli.main import main
from chorus.eval.outcomes import Outcome, OutcomeItem, write_outcomes
from chorus.patterns.weighted import Weighted
from chorus.providers.scripted import ScriptedModel
from chorus.routing.learned import choose, feedback_shift, fit
from chorus.routing.predictor import Neighbours, OutcomePredictor


def _router(n: int = 200, seed: int = 0) -> tuple[OutcomePredictor, np.ndarray]:
    """Two models predicted equally good on every prompt; 'b' is cheaper."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    right = rng.random(n) < 0.7
    scores = np.stack([right, right], axis=1).astype(float)
    costs = np.tile([10.0, 1.0], (n, 1))
    return fit(x, scores, costs, ["a", "b"], kind="knn", holdout=0.0), x


def test_feedback_shift_grows_with_evidence() -> None:
    base = np.array([0.7, 0.7])
    assert list(feedback_shift(base, {}, ["a", "b"])) == [0.0, 0.0]
    few = feedback_shift(base, {"b": [5, 0.0]}, ["a", "b"], prior=50)
    many = feedback_shift(base, {"b": [5000, 0.0]}, ["a", "b"], prior=50)
    assert few[0] == 0.0 and -0.7 < many[1] < few[1] < 0
    assert many[1] == pytest.approx(-0.7, abs=0.01)


def test_record_outcome_moves_the_choice_and_is_saved(tmp_path: Path) -> None:
    router, x = _router()
    rel = router.relative_costs()
    lam = 0.05  # a little price on cost: with equal predictions the cheap 'b' wins
    assert (choose(router.predict(x), rel, lam) == 1).all()
    fitted = router
    for _ in range(300):  # in real use 'b' keeps failing
        router = router.with_outcome("b", 0.0).with_outcome("a", 1.0)
    assert (choose(router.predict(x), rel, lam) == 0).mean() > 0.95
    # The fitted predictor is a value: recording made a new one.
    assert not fitted.feedback.outcomes and (choose(fitted.predict(x), rel, lam) == 1).all()
    loaded = OutcomePredictor.load(router.save(tmp_path / "r"))
    assert loaded.feedback.outcomes == {"b": (300, 0.0), "a": (300, 300.0)}
    assert np.allclose(loaded.predict(x), router.predict(x))
    with pytest.raises(ValueError, match="no model 'c'"):
        router.with_outcome("c", 1.0)
    with pytest.raises(ValueError, match="reward"):
        router.with_outcome("a", 1.5)


def _replay_table(n: int, accuracy: dict[str, float], seed: int = 0) -> list[OutcomeItem]:
    rng = np.random.default_rng(seed)
    return [OutcomeItem(f"i{i}", f"question {i}", None, None,
                        {m: Outcome(float(rng.random() < p), 0.001, "x", 1)
                         for m, p in accuracy.items()}) for i in range(n)]


def test_offline_replay_converges_toward_the_better_models() -> None:
    accuracy = {"good": 0.8, "fair": 0.6, "poor": 0.3}
    rows = _replay_table(600, accuracy)
    ens = Weighted("w", [ScriptedModel(m, default=m) for m in accuracy],
                   scorer=lambda request, text: 1.0, eta=0.1)
    router = OutcomePredictor(tuple(accuracy),
                              Neighbours(np.eye(3), np.full((3, 3), 0.5), k=3), np.ones(3))
    shares = []
    for i, row in enumerate(rows, 1):
        for m, o in row.outcomes.items():
            assert o.score is not None
            ens.record_outcome(m, o.score)
            router = router.with_outcome(m, o.score)
        if i in (20, 100, 600):
            shares.append(ens.weights["good"] / sum(ens.weights.values()))
    # The best model's share of the weight grows as outcomes accumulate, and the final
    # order of weights and of router shifts is the order of real accuracy.
    assert shares[0] < shares[1] < shares[2] and shares[2] > 0.95
    assert ens.weights["good"] > ens.weights["fair"] > ens.weights["poor"]
    pred = router.predict(np.eye(3)[:1])[0]
    assert pred[0] > pred[1] > pred[2]
    means = [sum(r.outcomes[m].score or 0.0 for r in rows) / len(rows) for m in accuracy]
    assert list(pred) == pytest.approx([0.5 + (p - 0.5) * 600 / 650 for p in means])


def test_cli_feedback_updates_a_learned_router(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    router, _ = _router()
    router.save(tmp_path / "r")
    rows = _replay_table(40, {"a": 0.9, "b": 0.1})
    write_outcomes(tmp_path / "t.jsonl", rows)
    (tmp_path / "c.yaml").write_text(
        "models:\n  a: {provider: scripted, default: A}\n  b: {provider: scripted, default: B}\n"
        "systems:\n  routed:\n    kind: router\n"
        "    classifier: {type: learned, path: r, labels: {b: cheap}}\n"
        "    routes: {a: a, cheap: b}\n    default: a\n")
    code = main(["feedback", "-c", str(tmp_path / "c.yaml"), "-s", "routed", "--outcomes",
                 str(tmp_path / "t.jsonl"), "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    report = json.loads(out.out)
    assert report["updates"] == 80
    shift = next(iter(report["routers"].values()))["shift"]
    assert shift["a"] > 0 > shift["b"]
    saved = json.loads((tmp_path / "r" / "router.json").read_text())
    assert saved["feedback"]["outcomes"]["b"][0] == 40
    # A route name counts for the model it routes to.
    assert main(["feedback", "-c", str(tmp_path / "c.yaml"), "-s", "routed", "--model",
                 "cheap", "--reward", "1"]) == 0
    capsys.readouterr()
    assert OutcomePredictor.load(tmp_path / "r").feedback.outcomes["b"][0] == 41
    assert main(["feedback", "-c", str(tmp_path / "c.yaml"), "-s", "routed", "--model",
                 "zzz", "--reward", "1"]) == 1
    assert "has a model 'zzz'" in capsys.readouterr().err
