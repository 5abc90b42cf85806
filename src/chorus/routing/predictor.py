"""What a learned router knows, as frozen dataclasses: an ``OutcomePredictor`` predicts
each model's score for an embedded prompt (its ``scorer``: ``Neighbours``, ``Perceptron``
or ``Factorisation``), keeps the models' mean costs (and, where the table shows that a
longer prompt costs more, each model's ``PriceByLength``), the calibrated cost knob and
the real outcomes recorded since fitting. It is neither a Router nor a Model: the Router
pattern uses it through ``LearnedClassifier`` (``chorus.routing.learned``), which fits
it (``fit``) too.

Saved as a folder: ``router.json`` and one ``.npy`` per array. Format
``chorus-router/2`` names every field; folders of ``chorus-router/1`` (a free-form
``info`` object beside the arrays) still load.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "FEEDBACK_PRIOR",
    "Factorisation",
    "Feedback",
    "Kind",
    "KnobPoint",
    "Neighbours",
    "OutcomePredictor",
    "Perceptron",
    "PriceByLength",
    "Scorer",
    "Training",
    "choose",
    "feedback_shift",
]

Kind = Literal["knn", "mlp", "mf"]
Array = npt.NDArray[np.float64]
FORMAT = "chorus-router/2"
_FORMAT_1 = "chorus-router/1"

#: Outcomes a model needs before its recorded mean counts as much as its training mean.
FEEDBACK_PRIOR = 50.0


def sigmoid(z: Array) -> Array:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -30, 30))))


def _frozen(a: npt.ArrayLike) -> Array:
    """A read-only float64 view (the caller's array keeps its own flags)."""
    v = np.asarray(a, dtype=np.float64).view()
    v.setflags(write=False)
    return v


# -- the three scorers ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Neighbours:
    """kNN: the similarity-weighted mean score of the ``k`` most similar training
    prompts (``train_x``: unit rows; ``train_y``: items x models, missing filled)."""

    kind: ClassVar[Kind] = "knn"
    ARRAYS: ClassVar[tuple[str, ...]] = ("train_x", "train_y")

    train_x: Array
    train_y: Array
    k: int = 20

    def __post_init__(self) -> None:
        _freeze_arrays(self)
        if self.k < 1:
            raise ValueError(f"k must be at least 1, got {self.k}")

    def predict(self, x: Array) -> Array:
        sims = x @ self.train_x.T
        return self._from_sims(sims, min(self.k, sims.shape[1]))

    def means(self) -> Array:
        return np.asarray(self.train_y.mean(axis=0), dtype=np.float64)

    def predict_left_out(self, chunk: int = 1024) -> Array:
        """The prediction for each training prompt from its ``k`` nearest *other*
        training prompts: a held-out prediction of every training item, for free."""
        n = self.train_x.shape[0]
        k = min(self.k, n - 1)
        out = np.empty((n, self.train_y.shape[1]))
        for start in range(0, n, chunk):
            sims = self.train_x[start:start + chunk] @ self.train_x.T
            rows = np.arange(sims.shape[0])
            sims[rows, rows + start] = -np.inf
            out[start:start + chunk] = self._from_sims(sims, k)
        return out

    def _from_sims(self, sims: Array, k: int) -> Array:
        """Per row of ``sims`` (similarity to every training prompt), the mean score of
        the ``k`` most similar training prompts, weighted by similarity: closer
        neighbours count more, and two prompts rarely get the very same prediction, so
        the knob's decisions change one prompt at a time instead of in blocks that leave
        gaps in the curve."""
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        w = np.maximum(np.take_along_axis(sims, top, axis=1), 1e-6)
        return np.asarray((self.train_y[top] * w[:, :, None]).sum(axis=1)
                          / w.sum(axis=1, keepdims=True))


@dataclass(frozen=True, slots=True)
class Perceptron:
    """mlp: one hidden ReLU layer, a sigmoid per model."""

    kind: ClassVar[Kind] = "mlp"
    ARRAYS: ClassVar[tuple[str, ...]] = ("w1", "b1", "w2", "b2")

    w1: Array
    b1: Array
    w2: Array
    b2: Array

    def __post_init__(self) -> None:
        _freeze_arrays(self)

    def predict(self, x: Array) -> Array:
        h = np.maximum(0.0, x @ self.w1 + self.b1)
        return sigmoid(h @ self.w2 + self.b2)

    def means(self) -> Array:
        # fit() starts the output bias at the logit of each model's training mean.
        return sigmoid(self.b2)


@dataclass(frozen=True, slots=True)
class Factorisation:
    """mf: matrix factorisation as in RouteLLM, ``σ(w·(v_model ⊙ W q) + b_model)``
    (``proj`` is W, ``v`` one row per model)."""

    kind: ClassVar[Kind] = "mf"
    ARRAYS: ClassVar[tuple[str, ...]] = ("proj", "w", "v", "b")

    proj: Array
    w: Array
    v: Array
    b: Array

    def __post_init__(self) -> None:
        _freeze_arrays(self)

    def predict(self, x: Array) -> Array:
        h = x @ self.proj.T
        return sigmoid((h * self.w) @ self.v.T + self.b)

    def means(self) -> Array:
        return sigmoid(self.b)


Scorer = Neighbours | Perceptron | Factorisation
_SCORERS: dict[str, type[Scorer]] = {c.kind: c for c in (Neighbours, Perceptron, Factorisation)}


def _freeze_arrays(owner: Scorer | PriceByLength) -> None:
    for name in owner.ARRAYS:
        object.__setattr__(owner, name, _frozen(getattr(owner, name)))


def scorer_of(kind: str, arrays: Mapping[str, npt.ArrayLike], k: int = 20) -> Scorer:
    """The scorer of ``kind`` over its named arrays (``k`` for kNN)."""
    cls = _SCORERS.get(kind)
    if cls is None:
        raise ValueError(f"kind must be knn, mlp or mf, got {kind!r}")
    missing = [n for n in cls.ARRAYS if n not in arrays]
    if missing:
        raise ValueError(f"a {kind} router needs the arrays {', '.join(missing)}")
    given = {n: arrays[n] for n in cls.ARRAYS}
    return Neighbours(**given, k=k) if cls is Neighbours else cls(**given)  # type: ignore[arg-type]


# -- the rest of the state --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PriceByLength:
    """What a call of each model costs for a prompt of ``chars`` characters:
    ``base + per_char * chars`` (least squares on the training items, ``per_char`` at
    least 0). A long prompt costs more input tokens, and often more output; where the
    price of a call varies with it, routing by each model's mean cost sends the long,
    dear prompts to the dear model as readily as the short ones."""

    ARRAYS: ClassVar[tuple[str, ...]] = ("base", "per_char")

    base: Array
    per_char: Array

    def __post_init__(self) -> None:
        _freeze_arrays(self)

    def costs(self, chars: npt.ArrayLike) -> Array:
        """Items x models: the expected cost of each call (never below 0)."""
        c = np.asarray(chars, dtype=np.float64).reshape(-1, 1)
        return np.asarray(np.maximum(self.base[None, :] + c * self.per_char[None, :], 0.0))

    @classmethod
    def fit(cls, chars: npt.ArrayLike, costs: Array) -> PriceByLength:
        """Per model (a column of ``costs``, NaN where not recorded), the least-squares
        line of cost against prompt length; a falling line is flattened to the mean."""
        c = np.asarray(chars, dtype=np.float64)
        base, per_char = np.zeros(costs.shape[1]), np.zeros(costs.shape[1])
        for j in range(costs.shape[1]):
            seen = ~np.isnan(costs[:, j])
            if not seen.any():
                continue
            x, y = c[seen], costs[seen, j]
            slope = float(np.cov(x, y, bias=True)[0, 1] / np.var(x)) if np.var(x) > 0 else 0.0
            # Rounding in a constant price is not a price that grows with the prompt.
            if slope * float(np.std(x)) > 1e-9 * max(abs(float(y.mean())), 1e-12):
                per_char[j] = slope
            base[j] = float(y.mean() - per_char[j] * x.mean())
        return cls(base, per_char)


@dataclass(frozen=True, slots=True)
class KnobPoint:
    """One held-out point of the calibration: at knob ``lam`` (λ), the router's cost as
    a share of always calling the costliest model, and its mean quality."""

    lam: float
    cost_share: float
    quality: float


@dataclass(frozen=True, slots=True)
class Training:
    """How the predictor was fitted: settings, split sizes, each model's mean training
    score (empty in folders saved before it was kept) and where the prompts came from."""

    hidden: int = 64
    epochs: int = 40
    seed: int = 0
    tolerance: float = 0.01
    train_items: int = 0
    holdout_items: int = 0
    train_means: tuple[float, ...] = ()
    #: kNN without a given k: the held-out curve area of each k tried.
    k_chosen_from: Mapping[int, float] = field(default_factory=dict)
    #: The held-out curve area with each model at its mean cost ("mean") and priced by
    #: prompt length ("by_length"): the larger decides ``price_by_length``.
    price_chosen_from: Mapping[str, float] = field(default_factory=dict)
    embedding_dims: int | None = None
    embedder: str | None = None
    trained_on: str | None = None


@dataclass(frozen=True, slots=True)
class Feedback:
    """Real outcomes recorded since fitting: per model, (count, sum of rewards); with
    ``prior`` outcomes a model's record counts as much as its training mean."""

    outcomes: Mapping[str, tuple[int, float]] = field(default_factory=dict)
    prior: float = FEEDBACK_PRIOR

    def add(self, model: str, reward: float) -> Feedback:
        n, total = self.outcomes.get(model, (0, 0.0))
        return replace(self, outcomes={**self.outcomes,
                                       model: (int(n) + 1, float(total) + float(reward))})


def feedback_shift(base: Array, feedback: Mapping[str, Sequence[float]],
                   models: Sequence[str], prior: float = FEEDBACK_PRIOR) -> Array:
    """Per model: (mean recorded reward - training mean) x n / (n + prior). With few
    outcomes the predictor stands; with many, a model's real record moves its scores."""
    shift = np.zeros(len(models))
    for j, m in enumerate(models):
        n, total = feedback.get(m, (0, 0.0))
        if n > 0:
            shift[j] = (total / n - float(base[j])) * n / (n + prior)
    return shift


def choose(pred: Array, rel_costs: Array, lam: float) -> npt.NDArray[np.int64]:
    """The chosen model per row: argmax of predicted score - λ·relative cost; λ = inf
    picks the cheapest model. ``rel_costs``: one cost per model, or one row per row of
    ``pred`` (``OutcomePredictor.relative_costs`` given the prompts' lengths)."""
    rel = np.broadcast_to(rel_costs, pred.shape)
    if np.isinf(lam):
        return np.asarray(np.argmin(rel, axis=1), dtype=np.int64)
    return np.asarray(np.argmax(pred - lam * rel, axis=1), dtype=np.int64)


# -- the predictor ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutcomePredictor:
    """A fitted predictor of each of ``models``' score for a prompt embedding, with the
    models' mean cost per call, the calibrated knob and recorded outcomes; a router's
    choice is ``argmax_j predicted[j] - λ * cost[j] / max(cost)`` (``choose``)."""

    models: tuple[str, ...]
    scorer: Scorer
    costs: Array  # mean cost per call of each model, on the training items
    willingness_to_pay: float = 0.0
    calibration: tuple[KnobPoint, ...] = ()
    training: Training = field(default_factory=Training)
    feedback: Feedback = field(default_factory=Feedback)
    #: Each model's cost by prompt length, when fitting found that it routes better than
    #: the mean costs on the held-out items; None: every call at its model's mean cost.
    price_by_length: PriceByLength | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "costs", _frozen(self.costs))
        object.__setattr__(self, "calibration", tuple(self.calibration))

    @property
    def kind(self) -> Kind:
        return self.scorer.kind

    def predict(self, x: npt.ArrayLike) -> Array:
        """Predicted score of every model (columns) for every embedded prompt (rows),
        shifted by what real outcomes recorded since fitting say (``with_outcome``)."""
        raw = self.scorer.predict(np.asarray(x, dtype=np.float64))
        if not self.feedback.outcomes:
            return raw
        return np.asarray(np.clip(raw + self.shifts()[None, :], 0.0, 1.0))

    def base_means(self) -> Array:
        """Each model's mean score on the training items (what the predictor learned)."""
        if self.training.train_means:
            return np.asarray(self.training.train_means, dtype=np.float64)
        return self.scorer.means()  # saved before train_means was kept

    def shifts(self) -> Array:
        """Each model's prediction shift from the recorded outcomes."""
        return feedback_shift(self.base_means(), self.feedback.outcomes, self.models,
                              self.feedback.prior)

    def with_outcome(self, model: str, reward: float) -> OutcomePredictor:
        """This predictor with one more real outcome (reward in [0, 1]) of ``model``;
        saved with it (``save``) so it survives restarts."""
        if model not in self.models:
            raise ValueError(f"router has no model {model!r}; known: {', '.join(self.models)}")
        if not 0.0 <= reward <= 1.0 or np.isnan(reward):
            raise ValueError(f"reward must be in [0, 1], got {reward!r}")
        return replace(self, feedback=self.feedback.add(model, reward))

    def relative_costs(self, chars: npt.ArrayLike | None = None) -> Array:
        """Each model's cost over the costliest model's mean cost: one row of means, or,
        given the prompts' lengths in characters (``chars``) and a ``price_by_length``,
        one row per prompt."""
        top = float(np.max(self.costs))
        costs = (self.costs if chars is None or self.price_by_length is None
                 else self.price_by_length.costs(chars))
        return costs / top if top > 0 else np.zeros_like(costs)

    def knob_for_share(self, share: float) -> float:
        """The calibrated λ whose held-out cost share (of the costliest model) is at most
        ``share``, with the best held-out quality."""
        fits = [c for c in self.calibration if c.cost_share <= share + 1e-12]
        if not fits:
            return float(max((c.lam for c in self.calibration), default=0.0))
        return float(max(fits, key=lambda c: (c.quality, -c.cost_share)).lam)

    def save(self, folder: str | Path) -> Path:
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        for name in self.scorer.ARRAYS:
            np.save(out / f"{name}.npy", getattr(self.scorer, name))
        (out / "router.json").write_text(json.dumps(_to_json(self), indent=2) + "\n",
                                         "utf-8")
        return out

    @classmethod
    def load(cls, folder: str | Path) -> OutcomePredictor:
        root = Path(folder)
        try:
            meta = json.loads((root / "router.json").read_text("utf-8"))
            fmt = meta.get("format")
            if fmt not in (FORMAT, _FORMAT_1):
                raise ValueError(f"{str(root)!r}: unknown router format {fmt!r}")
            names = meta["scorer"]["arrays"] if fmt == FORMAT else meta["arrays"]
            arrays = {n: np.load(root / f"{n}.npy") for n in names}
        except (OSError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{str(root)!r} is not a saved router ({exc})") from None
        try:
            return _from_json(meta, arrays) if fmt == FORMAT else _from_v1(meta, arrays)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{str(root)!r}: a damaged router.json ({exc!r})") from None


def _to_json(p: OutcomePredictor) -> dict[str, Any]:
    t = p.training
    scorer: dict[str, Any] = {"kind": p.kind, "arrays": list(p.scorer.ARRAYS)}
    if isinstance(p.scorer, Neighbours):
        scorer["k"] = p.scorer.k
    training = {f.name: getattr(t, f.name) for f in fields(t)}
    training["train_means"] = list(t.train_means)
    training["k_chosen_from"] = {str(k): v for k, v in t.k_chosen_from.items()}
    return {"format": FORMAT, "models": list(p.models),
            "costs": [float(c) for c in p.costs], "scorer": scorer,
            "willingness_to_pay": p.willingness_to_pay,
            "calibration": [{"lambda": c.lam, "cost_share": c.cost_share,
                             "quality": c.quality} for c in p.calibration],
            "training": training,
            "feedback": {"prior": p.feedback.prior,
                         "outcomes": {m: list(v) for m, v in p.feedback.outcomes.items()}},
            **({} if p.price_by_length is None else {"price_by_length": {
                "base": [float(v) for v in p.price_by_length.base],
                "per_char": [float(v) for v in p.price_by_length.per_char]}})}


def _calibration(rows: Sequence[Mapping[str, float]]) -> tuple[KnobPoint, ...]:
    return tuple(KnobPoint(float(c["lambda"]), float(c["cost_share"]), float(c["quality"]))
                 for c in rows)


def _training(raw: Mapping[str, Any]) -> Training:
    """A Training from its JSON object; unknown keys are left out (a chorus-router/1
    ``info`` also held the feedback and the kNN's k)."""
    known = {f.name for f in fields(Training)}
    kw = {k: v for k, v in raw.items() if k in known}
    kw["train_means"] = tuple(float(v) for v in kw.get("train_means", ()))
    kw["k_chosen_from"] = {int(k): float(v) for k, v in kw.get("k_chosen_from", {}).items()}
    return Training(**kw)


def _feedback(outcomes: Mapping[str, Sequence[float]], prior: float) -> Feedback:
    return Feedback({m: (int(v[0]), float(v[1])) for m, v in outcomes.items()}, float(prior))


def _from_json(meta: Mapping[str, Any], arrays: Mapping[str, Array]) -> OutcomePredictor:
    s, fb, price = meta["scorer"], meta.get("feedback", {}), meta.get("price_by_length")
    return OutcomePredictor(
        tuple(meta["models"]), scorer_of(s["kind"], arrays, int(s.get("k", 20))),
        np.asarray(meta["costs"], dtype=np.float64), float(meta["willingness_to_pay"]),
        _calibration(meta["calibration"]), _training(meta.get("training", {})),
        _feedback(fb.get("outcomes", {}), fb.get("prior", FEEDBACK_PRIOR)),
        None if price is None else PriceByLength(np.asarray(price["base"], dtype=np.float64),
                                                 np.asarray(price["per_char"],
                                                            dtype=np.float64)))


def _from_v1(meta: Mapping[str, Any], arrays: Mapping[str, Array]) -> OutcomePredictor:
    info = meta.get("info", {})
    return OutcomePredictor(
        tuple(meta["models"]), scorer_of(meta["kind"], arrays, int(info.get("k", 20))),
        np.asarray(meta["costs"], dtype=np.float64), float(meta["willingness_to_pay"]),
        _calibration(meta["calibration"]), _training(info),
        _feedback(info.get("feedback", {}), info.get("feedback_prior", FEEDBACK_PRIOR)))
