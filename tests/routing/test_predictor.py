"""The outcome predictor's typed, frozen state and its saved format: folders written
before the state was typed (``chorus-router/1``, a free-form ``info``) still load and
predict what the code that wrote them predicted."""

from __future__ import annotations

import dataclasses
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from chorus.routing.learned import LearnedClassifier, fit
from chorus.routing.predictor import (
    Factorisation,
    Feedback,
    KnobPoint,
    Neighbours,
    OutcomePredictor,
    Perceptron,
    Training,
)

V1 = Path(__file__).parent.parent / "fixtures" / "routers"


def _probe_and_expected() -> tuple[np.ndarray, dict[str, object]]:
    return np.load(V1 / "probe.npy"), json.loads((V1 / "predicted-by-v1.json").read_text())


def test_a_v1_knn_folder_loads_with_every_field_typed() -> None:
    probe, expected = _probe_and_expected()
    p = OutcomePredictor.load(V1 / "knn-v1")
    info = json.loads((V1 / "knn-v1" / "router.json").read_text())["info"]
    assert p.kind == "knn" and p.models == ("cheap", "big")
    assert isinstance(p.scorer, Neighbours) and p.scorer.k == info["k"]
    assert p.training == Training(
        hidden=64, epochs=40, seed=0, tolerance=0.01, train_items=info["train_items"],
        holdout_items=info["holdout_items"], train_means=tuple(info["train_means"]),
        k_chosen_from={int(k): v for k, v in info["k_chosen_from"].items()},
        embedding_dims=4, embedder="minilm", trained_on="train.jsonl")
    assert p.feedback == Feedback({"cheap": (2, 1.0), "big": (1, 1.0)})
    assert all(isinstance(c, KnobPoint) for c in p.calibration)
    # Same predictions (recorded outcomes included) and knob as the code that wrote it.
    assert np.allclose(p.predict(probe), expected["knn"])
    assert p.willingness_to_pay == expected["knn_lambda"]
    assert p.knob_for_share(0.5) == expected["knn_share_0.5"]


def test_a_v1_mlp_folder_loads_and_predicts_the_same() -> None:
    probe, expected = _probe_and_expected()
    p = OutcomePredictor.load(V1 / "mlp-v1")
    assert isinstance(p.scorer, Perceptron) and p.scorer.w1.shape == (4, 3)
    assert p.training.hidden == 3 and p.training.epochs == 2
    assert np.allclose(p.predict(probe), expected["mlp"])
    assert p.willingness_to_pay == expected["mlp_lambda"]


def test_a_v1_folder_is_saved_as_v2_and_reads_back_equal(tmp_path: Path) -> None:
    probe, _ = _probe_and_expected()
    old = OutcomePredictor.load(V1 / "knn-v1")
    meta = json.loads((old.save(tmp_path / "r") / "router.json").read_text())
    assert meta["format"] == "chorus-router/2" and "info" not in meta
    assert meta["scorer"] == {"kind": "knn", "arrays": ["train_x", "train_y"],
                              "k": old.scorer.k}  # type: ignore[union-attr]
    new = OutcomePredictor.load(tmp_path / "r")
    assert (new.models, new.training, new.feedback, new.calibration) == (
        old.models, old.training, old.feedback, old.calibration)
    assert np.array_equal(new.predict(probe), old.predict(probe))


@pytest.mark.parametrize("kind", ["knn", "mlp", "mf"])
def test_every_kind_round_trips(kind: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 6))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    scores = np.stack([(x[:, 1] > 0).astype(float), np.ones(60)], axis=1)
    p = fit(x, scores, np.tile([1.0, 4.0], (60, 1)), ["a", "b"], kind=kind,  # type: ignore[arg-type]
            hidden=4, epochs=3).with_outcome("a", 0.25)
    again = OutcomePredictor.load(p.save(tmp_path / kind))
    assert type(again.scorer) is {"knn": Neighbours, "mlp": Perceptron,
                                  "mf": Factorisation}[kind]
    assert again.training.embedding_dims == 6 and again.training.train_items == 48
    assert (again.calibration, again.training, again.feedback) == (
        p.calibration, p.training, p.feedback)
    assert np.array_equal(again.predict(x), p.predict(x))


def test_the_state_is_frozen() -> None:
    p = OutcomePredictor.load(V1 / "knn-v1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.willingness_to_pay = 1.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.scorer.k = 3  # type: ignore[misc,union-attr]
    with pytest.raises(ValueError, match="read-only"):
        p.costs[0] = 0.0
    with pytest.raises(ValueError, match="read-only"):
        p.scorer.train_x[0, 0] = 0.0  # type: ignore[union-attr]
    # The caller's arrays stay writable.
    mine = np.eye(3)
    Neighbours(mine, np.ones((3, 2)))
    mine[0, 0] = 2.0
    assert isinstance(p.calibration, tuple) and isinstance(p.models, tuple)


def test_bad_folders_get_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is not a saved router"):
        OutcomePredictor.load(tmp_path / "none")
    shutil.copytree(V1 / "knn-v1", tmp_path / "r")
    meta = json.loads((tmp_path / "r" / "router.json").read_text())
    (tmp_path / "r" / "router.json").write_text(json.dumps({**meta, "format": "x/9"}))
    with pytest.raises(ValueError, match="unknown router format 'x/9'"):
        OutcomePredictor.load(tmp_path / "r")
    (tmp_path / "r" / "router.json").write_text(json.dumps({**meta, "kind": "svm"}))
    with pytest.raises(ValueError, match="kind must be knn, mlp or mf, got 'svm'"):
        OutcomePredictor.load(tmp_path / "r")
    del meta["costs"]
    (tmp_path / "r" / "router.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="damaged router.json.*costs"):
        OutcomePredictor.load(tmp_path / "r")


def test_the_classifier_records_outcomes_into_a_new_predictor() -> None:
    fitted = OutcomePredictor.load(V1 / "knn-v1")
    clf = LearnedClassifier(fitted, embedder=None)  # type: ignore[arg-type]
    clf.record_outcome("big", 0.0)
    assert clf.predictor.feedback.outcomes["big"] == (2, 1.0)
    assert fitted.feedback.outcomes["big"] == (1, 1.0)


def test_the_old_name_still_imports_with_a_warning() -> None:
    import chorus.routing.learned as learned

    with pytest.warns(DeprecationWarning, match="OutcomePredictor"):
        old = learned.LearnedRouter
    assert issubclass(old, OutcomePredictor)
    assert "LearnedRouter" not in learned.__all__
    with warnings.catch_warnings(), pytest.raises(AttributeError):
        warnings.simplefilter("error")
        learned.NoSuchName  # noqa: B018


def old_router(folder: Path) -> OutcomePredictor:
    import chorus.routing.learned as learned

    with pytest.warns(DeprecationWarning):
        cls = learned.LearnedRouter
    router = cls.load(folder)
    assert type(router) is cls and isinstance(router, OutcomePredictor)
    return router


@pytest.mark.parametrize("name", ["knn-v1", "mlp-v1"])
def test_the_old_name_keeps_the_old_class_s_info_and_arrays(name: str) -> None:
    router = old_router(V1 / name)
    meta = json.loads((V1 / name / "router.json").read_text("utf-8"))
    expected = dict(meta["info"])
    if meta["kind"] != "knn":
        expected.pop("k")  # the old class kept a k it never used outside kNN
    assert router.info == expected  # type: ignore[attr-defined]
    arrays = router.arrays  # type: ignore[attr-defined]
    assert sorted(arrays) == sorted(meta["arrays"])
    for n, arr in arrays.items():
        np.testing.assert_array_equal(arr, np.load(V1 / name / f"{n}.npy"))


def test_the_old_name_records_outcomes_in_place_like_the_old_class(tmp_path: Path) -> None:
    router = old_router(V1 / "knn-v1")
    probe = np.load(V1 / "probe.npy")
    before = router.predict(probe)
    fresh = OutcomePredictor.load(V1 / "knn-v1")
    shifts = router.record_outcome("big", 0.0)  # type: ignore[attr-defined]
    # The router itself changed, as the mutable old class did; the result is the shifts.
    assert router.feedback.outcomes["big"] == (2, 1.0)
    assert router.info["feedback"]["big"] == [2, 1.0]  # type: ignore[attr-defined]
    expected = fresh.with_outcome("big", 0.0)
    assert shifts == {m: float(v) for m, v in zip(router.models, expected.shifts(),
                                                   strict=True)}
    assert shifts["big"] < fresh.shifts()[list(fresh.models).index("big")]
    np.testing.assert_allclose(router.predict(probe), expected.predict(probe))
    assert not np.allclose(router.predict(probe), before)
    with pytest.raises(ValueError, match="no model 'nope'"):
        router.record_outcome("nope", 1.0)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="reward must be in"):
        router.record_outcome("big", 2.0)  # type: ignore[attr-defined]
    # Saved and loaded, the outcome is kept.
    again = OutcomePredictor.load(router.save(tmp_path / "saved"))
    assert again.feedback.outcomes["big"] == (2, 1.0)
    # It is still a predictor: the classifier takes it.
    clf = LearnedClassifier(router, embedder=None)  # type: ignore[arg-type]
    assert clf.predictor is router
