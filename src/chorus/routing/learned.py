"""Routers learned from outcome tables: an ``OutcomePredictor`` (``routing.predictor``)
predicts each model's score for a prompt from its embedding (local MiniLM by default),
and ``LearnedClassifier`` has the Router pattern call the model with the best predicted
score minus a price of cost (``willingness_to_pay``, λ):

    choice = argmax_j  predicted_score[j] - λ * cost[j] / max(mean_cost)

where ``cost[j]`` is the model's mean cost per call, or, when fitting found that it
routes better, its cost for a prompt of this length (``PriceByLength``).

Three scorers (``kind``): ``knn`` (the similarity-weighted mean score of the k most
similar training prompts), ``mlp`` (one hidden layer, numpy) and ``mf`` (matrix
factorisation as in RouteLLM: ``σ(w·(v_model ⊙ W q) + b_model)``). ``fit`` holds out
a split to calibrate λ: the default is the cheapest setting whose held-out quality is
within ``tolerance`` of the best. The predictor is saved as a folder (``router.json`` +
``.npy`` arrays) and used in YAML:

    classifier: {type: learned, path: routers/gsm8k-mf, willingness_to_pay: 0.2}
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field

from chorus.config.schema import Node
from chorus.core.registry import BuildContext, config_path
from chorus.core.types import Request
from chorus.embeddings import Embedder
from chorus.routing._base import Classifier, Decision
from chorus.routing.predictor import (
    FEEDBACK_PRIOR,
    Kind,
    KnobPoint,
    Neighbours,
    OutcomePredictor,
    PriceByLength,
    Training,
    choose,
    feedback_shift,
    scorer_of,
    sigmoid,
)

__all__ = [
    "Kind",
    "OutcomePredictor",
    "LearnedClassifier",
    "LearnedClassifierConfig",
    "fit",
    "require_fittable",
    "knob_grid",
    "sweep",
    "choose",
    "curve_points",
    "feedback_shift",
    "FEEDBACK_PRIOR",
]

Array = npt.NDArray[np.float64]


class _LearnedRouter(OutcomePredictor):
    """``OutcomePredictor`` under its old name (``LearnedRouter``), with what the old
    class had and the predictor has not: ``record_outcome`` counts an outcome in place
    and returns the shifts, ``info`` and ``arrays`` are the old folder's dictionaries.
    New code uses ``OutcomePredictor.with_outcome``, ``training`` and ``scorer``."""

    __slots__ = ()

    @classmethod
    def load(cls, folder: str | Path) -> _LearnedRouter:
        p = OutcomePredictor.load(folder)
        return cls(p.models, p.scorer, p.costs, p.willingness_to_pay, p.calibration,
                   p.training, p.feedback, p.price_by_length)

    def record_outcome(self, model: str, reward: float) -> dict[str, float]:
        """Count one real outcome (reward in [0, 1]) of ``model`` in this router;
        each model's prediction shift."""
        # The old class was mutable: this router itself changes, as it did.
        object.__setattr__(self, "feedback", self.with_outcome(model, reward).feedback)
        return {m: float(v) for m, v in zip(self.models, self.shifts(), strict=True)}

    @property
    def info(self) -> dict[str, Any]:
        """The old ``info``: training settings, the kNN's k and recorded outcomes (a copy:
        changing it changes nothing)."""
        t = self.training
        out: dict[str, Any] = {}
        if isinstance(self.scorer, Neighbours):
            out["k"] = self.scorer.k
        for f in fields(t):
            value = getattr(t, f.name)
            if value is None or (f.name in ("k_chosen_from", "price_chosen_from")
                                 and not value):
                continue
            out[f.name] = value
        out["train_means"] = list(t.train_means)
        if t.k_chosen_from:
            out["k_chosen_from"] = {str(k): v for k, v in t.k_chosen_from.items()}
        if self.feedback.outcomes:
            out["feedback"] = {m: [n, s] for m, (n, s) in self.feedback.outcomes.items()}
        if self.feedback.prior != FEEDBACK_PRIOR:
            out["feedback_prior"] = self.feedback.prior
        return out

    @property
    def arrays(self) -> dict[str, Array]:
        """The fitted arrays by name, as the old class held them."""
        return {name: getattr(self.scorer, name) for name in self.scorer.ARRAYS}


def __getattr__(name: str) -> Any:
    if name == "LearnedRouter":  # its name until the predictor got its own module
        warnings.warn("chorus.routing.learned.LearnedRouter is now "
                      "chorus.routing.predictor.OutcomePredictor", DeprecationWarning,
                      stacklevel=2)
        return _LearnedRouter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _events(pred: Array, rel_costs: Array
            ) -> tuple[npt.NDArray[np.int64], Array, npt.NDArray[np.int64],
                       npt.NDArray[np.int64]]:
    """Every decision change of ``choose`` as λ grows from 0: the choice at 0 per row,
    and (λ, row, old choice, new choice) for each change. Per row, the choice walks the
    upper envelope of the lines ``pred[j] - λ·rel[j]``: from the current model, the next
    one is the cheaper model whose line overtakes it first (the cheapest on a tie).
    ``rel_costs``: one cost per model, or one row per row of ``pred``."""
    n = pred.shape[0]
    rows = np.arange(n)
    rel = np.broadcast_to(rel_costs, pred.shape)
    start = np.asarray(np.argmax(pred, axis=1), dtype=np.int64)
    cur, lam = start.copy(), np.zeros(n)
    lams: list[Array] = []
    who: list[npt.NDArray[np.int64]] = []
    olds: list[npt.NDArray[np.int64]] = []
    news: list[npt.NDArray[np.int64]] = []
    for _ in range(pred.shape[1]):
        dr = rel[rows, cur][:, None] - rel
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (pred[rows, cur][:, None] - pred) / dr
        t = np.where(dr > 0, np.maximum(t, lam[:, None]), np.inf)
        first = t.min(axis=1)
        moves = np.isfinite(first)
        if not moves.any():
            break
        tied = t <= first[:, None] + 1e-12 * np.maximum(1.0, np.abs(first[:, None]))
        nxt = np.asarray(np.argmin(np.where(tied, rel, np.inf), axis=1), dtype=np.int64)
        lams.append(first[moves])
        who.append(rows[moves])
        olds.append(cur[moves])
        news.append(nxt[moves])
        cur = np.where(moves, nxt, cur)
        lam = np.where(moves, first, lam)
    if not lams:
        empty = np.zeros(0, dtype=np.int64)
        return start, np.zeros(0), empty, np.zeros((0, 2), dtype=np.int64)
    return (start, np.concatenate(lams), np.concatenate(who),
            np.stack([np.concatenate(olds), np.concatenate(news)], axis=1))


def knob_grid(pred: Array, rel_costs: Array) -> list[float]:
    """One λ inside every interval between the router's decision changes on these rows,
    from 'best predicted' (0) to 'cheapest' (beyond the last change): evaluating
    ``choose`` at each visits every distinct decision of the rows, and no other."""
    return [lam for lam, _, _ in sweep(pred, rel_costs)]


def sweep(pred: Array, rel_costs: Array, scores: Array | None = None,
          costs: Array | None = None) -> list[tuple[float, float, float]]:
    """(λ, total cost, mean quality) at every distinct decision of the router over
    ``pred``'s rows: the exact curve, computed by applying each decision change once
    (missing scores count 0, missing costs 0). Without scores and costs the last two
    are 0."""
    start, lam, who, moves = _events(pred, rel_costs)
    breaks = np.unique(lam)
    knobs = [0.0]
    if breaks.size:
        knobs += [float(v) for v in (breaks[:-1] + breaks[1:]) / 2]
        knobs.append(float(breaks[-1]) * 2 + 1e-9)
    if scores is None or costs is None:
        return [(k, 0.0, 0.0) for k in knobs]
    s, c = np.nan_to_num(scores, nan=0.0), np.nan_to_num(costs, nan=0.0)
    rows = np.arange(len(start))
    base_c, base_q = float(c[rows, start].sum()), float(s[rows, start].sum())
    dc = np.zeros(len(knobs))
    dq = np.zeros(len(knobs))
    if breaks.size:
        at = np.searchsorted(breaks, lam) + 1  # the first knob after the change
        np.add.at(dc, at, c[who, moves[:, 1]] - c[who, moves[:, 0]])
        np.add.at(dq, at, s[who, moves[:, 1]] - s[who, moves[:, 0]])
    n = max(len(start), 1)
    return [(k, base_c + float(tc), (base_q + float(tq)) / n)
            for k, tc, tq in zip(knobs, np.cumsum(dc), np.cumsum(dq), strict=True)]


def curve_points(choice: npt.NDArray[np.int64], scores: Array, costs: Array
                 ) -> tuple[float, float]:
    """Total cost and mean quality of routing each row to ``choice`` (missing scores
    count as 0, missing costs as 0)."""
    rows = np.arange(len(choice))
    s, c = scores[rows, choice], costs[rows, choice]
    return float(np.nansum(c)), float(np.mean(np.nan_to_num(s, nan=0.0)))


# -- fitting ----------------------------------------------------------------------------


def _fill(scores: Array) -> Array:
    """Missing scores replaced by the model's mean (so kNN and masks stay simple)."""
    means = np.nanmean(np.where(np.isnan(scores), np.nan, scores), axis=0)
    means = np.nan_to_num(means, nan=0.0)
    return np.where(np.isnan(scores), means[None, :], scores)


class _Adam:
    def __init__(self, params: dict[str, Array], lr: float) -> None:
        self.p, self.lr, self.t = params, lr, 0
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}

    def step(self, grads: Mapping[str, Array]) -> None:
        self.t += 1
        for k, g in grads.items():
            self.m[k] = 0.9 * self.m[k] + 0.1 * g
            self.v[k] = 0.999 * self.v[k] + 0.001 * g * g
            mh = self.m[k] / (1 - 0.9 ** self.t)
            vh = self.v[k] / (1 - 0.999 ** self.t)
            self.p[k] -= self.lr * mh / (np.sqrt(vh) + 1e-8)


def _train(kind: Kind, x: Array, y: Array, mask: Array, rng: np.random.Generator,
           hidden: int, epochs: int, lr: float, l2: float) -> dict[str, Array]:
    n, d = x.shape
    m = y.shape[1]
    p: dict[str, Array]
    if kind == "mlp":
        p = {"w1": rng.normal(0, np.sqrt(2 / d), (d, hidden)), "b1": np.zeros(hidden),
             "w2": rng.normal(0, np.sqrt(1 / hidden), (hidden, m)), "b2": np.zeros(m)}
    else:
        p = {"proj": rng.normal(0, np.sqrt(1 / d), (hidden, d)), "w": np.ones(hidden),
             "v": rng.normal(0, 1.0, (m, hidden)) * 0.1, "b": np.zeros(m)}
    means = (y * mask).sum(0) / np.maximum(mask.sum(0), 1)
    logit = np.log(np.clip(means, 1e-3, 1 - 1e-3) / (1 - np.clip(means, 1e-3, 1 - 1e-3)))
    p["b2" if kind == "mlp" else "b"] = logit
    opt = _Adam(p, lr)
    batch = min(128, n)
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            xb, yb, mb = x[idx], y[idx], mask[idx]
            count = max(float(mb.sum()), 1.0)
            if kind == "mlp":
                pre = xb @ p["w1"] + p["b1"]
                h = np.maximum(0.0, pre)
                g = (sigmoid(h @ p["w2"] + p["b2"]) - yb) * mb / count  # dBCE/dlogit
                gh = (g @ p["w2"].T) * (pre > 0)
                grads = {"w2": h.T @ g + l2 * p["w2"], "b2": g.sum(0),
                         "w1": xb.T @ gh + l2 * p["w1"], "b1": gh.sum(0)}
            else:
                h = xb @ p["proj"].T
                hw = h * p["w"]
                g = (sigmoid(hw @ p["v"].T + p["b"]) - yb) * mb / count
                gv = g.T @ hw
                ghw = g @ p["v"]
                grads = {"v": gv + l2 * p["v"], "b": g.sum(0), "w": (ghw * h).sum(0),
                         "proj": (ghw * p["w"]).T @ xb + l2 * p["proj"]}
            opt.step(grads)
    return p


#: The neighbour counts a kNN router tries on its held-out split when no ``k`` is given.
K_GRID = (10, 20, 50, 100, 200)


def require_fittable(items: int, models: Sequence[str]) -> None:
    """Raise ValueError unless a router can be fitted on ``items`` items over ``models``:
    two models at least, and ten items."""
    if len(models) < 2:
        raise ValueError("a learned router needs outcomes of at least two models")
    if items < 10:
        raise ValueError(f"need at least 10 items to fit a router, got {items}")


def fit(x: Array, scores: Array, costs: Array, models: Sequence[str], *, kind: Kind = "knn",
        holdout: float = 0.2, tolerance: float = 0.01, seed: int = 0, k: int | None = None,
        hidden: int = 64, epochs: int = 40, lr: float = 3e-3, l2: float = 1e-4,
        chars: npt.ArrayLike | None = None) -> OutcomePredictor:
    """Fit on all but a ``holdout`` share of the rows, calibrate λ on the rest.

    ``x``: one embedding row per item; ``scores``/``costs``: items x models, NaN where
    not recorded. Scores should lie in [0, 1]. A kNN router without ``k`` takes the
    count from ``K_GRID`` (up to a tenth of the training items) whose held-out
    cost-quality curve is highest on average (``_curve_area``); without a held-out split
    it uses 20. Given each prompt's length in characters (``chars``), the router prices
    each call by its prompt's length (``PriceByLength``) when that gives the higher
    held-out curve, and by each model's mean cost otherwise.
    """
    if k is not None and k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if scores.shape[1] != len(models):
        raise ValueError(f"{scores.shape[1]} score columns but {len(models)} models")
    require_fittable(x.shape[0], models)
    if kind not in ("knn", "mlp", "mf"):
        raise ValueError(f"kind must be knn, mlp or mf, got {kind!r}")
    n = x.shape[0]
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_cal = max(1, int(round(n * holdout))) if holdout > 0 else 0
    cal, train = order[:n_cal], order[n_cal:]
    mean_costs = np.nan_to_num(np.nanmean(costs[train], axis=0), nan=0.0)
    xt = np.asarray(x[train], dtype=np.float64)
    training = Training(hidden=hidden, epochs=epochs, seed=seed, tolerance=tolerance,
                        train_items=int(len(train)), holdout_items=int(n_cal),
                        train_means=tuple(float(v) for v in _fill(scores[train]).mean(axis=0)),
                        embedding_dims=int(x.shape[1]))
    arrays: dict[str, Array]
    if kind == "knn":
        arrays = {"train_x": xt, "train_y": _fill(scores[train])}
    else:
        mask = (~np.isnan(scores[train])).astype(np.float64)
        arrays = _train(kind, xt, np.nan_to_num(scores[train], nan=0.0), mask, rng,
                        hidden, epochs, lr, l2)
    router = OutcomePredictor(tuple(models), scorer_of(kind, arrays, k or 20), mean_costs,
                              training=training)
    if kind == "knn" and k is None and n_cal:
        router = _choose_k(router, x[cal], scores[cal], costs[cal])
    length = None if chars is None else np.asarray(chars, dtype=np.float64)
    if length is not None and n_cal:
        router = _choose_price(router, PriceByLength.fit(length[train], costs[train]),
                               x[cal], scores[cal], costs[cal], length[cal],
                               (scores[train], costs[train], length[train]))
    if n_cal:
        router = _calibrate(router, x[cal], scores[cal], costs[cal], tolerance,
                            None if length is None else length[cal])
    return router


def _held_out_table(router: OutcomePredictor, x: Array, scores: Array, costs: Array,
                    chars: Array | None = None, pred: Array | None = None
                    ) -> tuple[KnobPoint, ...]:
    """At every distinct decision of the router on the held-out rows (``sweep``): λ, the
    cost as a share of always calling the costliest model, and the mean quality.
    ``pred``: the router's predictions for the rows, when made otherwise than from ``x``
    (a kNN's left-out ones)."""
    pred = router.predict(x) if pred is None else pred
    top = float(np.max(router.costs)) * len(pred)
    return tuple(KnobPoint(lam, cost / top if top > 0 else 0.0, quality)
                 for lam, cost, quality in sweep(pred, router.relative_costs(chars), scores,
                                                 costs))


def _curve_area(router: OutcomePredictor, x: Array, scores: Array, costs: Array,
                chars: Array | None = None, pred: Array | None = None) -> float:
    """Mean, over cost budgets of 5 %, 10 %, ... 100 % of the costliest model, of the best
    held-out quality the router reaches within the budget (0 where none fits)."""
    table = _held_out_table(router, x, scores, costs, chars, pred)
    budgets = np.linspace(0.05, 1.0, 20)
    return float(np.mean([max((c.quality for c in table
                               if c.cost_share <= b + 1e-12), default=0.0)
                          for b in budgets]))


def _with_k(router: OutcomePredictor, k: int) -> OutcomePredictor:
    assert isinstance(router.scorer, Neighbours)
    return replace(router, scorer=replace(router.scorer, k=k))


def _choose_k(router: OutcomePredictor, x: Array, scores: Array, costs: Array
              ) -> OutcomePredictor:
    """The kNN router with the ``k`` of the grid with the best held-out curve, among
    those up to a tenth of the training items: more is hardly a neighbourhood, and a
    small held-out split is too noisy to tell such near-averages apart."""
    n_train = router.training.train_items
    grid = [k for k in K_GRID if k <= max(K_GRID[0], n_train // 10)]
    areas = {k: _curve_area(_with_k(router, k), x, scores, costs) for k in grid}
    chosen = _with_k(router, max(grid, key=lambda k: (areas[k], -k)))
    return replace(chosen, training=replace(
        router.training, k_chosen_from={k: round(v, 5) for k, v in areas.items()}))


def _choose_price(router: OutcomePredictor, price: PriceByLength, x: Array, scores: Array,
                  costs: Array, chars: Array, fitted_on: tuple[Array, Array, Array]
                  ) -> OutcomePredictor:
    """The router priced by prompt length when that gives the higher held-out curve (the
    costs as recorded either way), else as it is: at each model's mean cost. A kNN
    router judges on every item, each training prompt predicted from its neighbours but
    itself (``fitted_on``: the training rows' scores, costs and lengths) beside the
    held-out ones; a one-fifth held-out split alone chose by chance."""
    if not price.per_char.any():
        return router  # no model's price grows with the prompt: nothing to choose
    pred = router.predict(x)
    if isinstance(router.scorer, Neighbours):
        s, c, n = fitted_on
        pred = np.vstack([router.scorer.predict_left_out(), pred])
        scores, costs, chars = np.vstack([s, scores]), np.vstack([c, costs]), \
            np.concatenate([n, chars])
    by_length = replace(router, price_by_length=price)
    areas = {"mean": _curve_area(router, x, scores, costs, pred=pred),
             "by_length": _curve_area(by_length, x, scores, costs, chars, pred)}
    chosen = by_length if areas["by_length"] > areas["mean"] else router
    return replace(chosen, training=replace(
        router.training, price_chosen_from={k: round(v, 5) for k, v in areas.items()}))


def _calibrate(router: OutcomePredictor, x: Array, scores: Array, costs: Array,
               tolerance: float, chars: Array | None = None) -> OutcomePredictor:
    table = _held_out_table(router, x, scores, costs, chars)
    best = max(c.quality for c in table)
    good = [c for c in table if c.quality >= best - tolerance]
    return replace(router, willingness_to_pay=float(min(good, key=lambda c: c.cost_share).lam),
                   calibration=table)


# -- the Router classifier --------------------------------------------------------------


class LearnedClassifier(Classifier):
    """A fitted ``OutcomePredictor`` as a Router classifier: the label is the chosen
    model's name (renamed through ``labels`` when given)."""

    type = "learned"

    def __init__(self, predictor: OutcomePredictor, embedder: Embedder, *,
                 willingness_to_pay: float | None = None, cost_share: float | None = None,
                 labels: Mapping[str, str] | None = None) -> None:
        if willingness_to_pay is not None and cost_share is not None:
            raise ValueError("give willingness_to_pay or cost_share, not both")
        self.predictor, self.embedder = predictor, embedder
        #: Where the router was loaded from (set by YAML); ``chorus feedback`` saves there.
        self.path: Path | None = None
        self.lam = (willingness_to_pay if willingness_to_pay is not None
                    else predictor.knob_for_share(cost_share) if cost_share is not None
                    else predictor.willingness_to_pay)
        rename = dict(labels or {})
        unknown = set(rename) - set(predictor.models)
        if unknown:
            raise ValueError(f"labels name unknown models: {', '.join(sorted(unknown))}")
        self.names = [rename.get(m, m) for m in predictor.models]
        self.labels = tuple(self.names)

    def record_outcome(self, model: str, reward: float) -> None:
        """One real outcome (reward in [0, 1]) of ``model`` (its recorded name) into the
        predictor, which the next requests use."""
        self.predictor = self.predictor.with_outcome(model, reward)

    async def classify(self, request: Request) -> Decision:
        prompt = request.prompt
        x = await self.embedder.embed([prompt])
        pred = self.predictor.predict(x)[0]
        # Priced by this prompt's length when the router was fitted so.
        rel = self.predictor.relative_costs([len(prompt)]).reshape(-1)
        j = int(choose(pred[None, :], rel, self.lam)[0])
        scores = {name: float(s) for name, s in zip(self.names, pred, strict=True)}
        return Decision(self.names[j], f"{self.names[j]}: predicted {pred[j]:.2f}, "
                        f"λ={self.lam:g} x relative cost {rel[j]:.3f}",
                        float(pred[j]), scores)


class LearnedClassifierConfig(Node):
    type: Literal["learned"]
    #: The router folder written by ``chorus router fit`` (relative to the config file).
    path: str
    #: λ: score given up per unit of relative cost (default: the calibrated value).
    willingness_to_pay: float | None = Field(None, ge=0)
    #: Instead of λ: the calibrated setting spending at most this share of the costliest.
    cost_share: float | None = Field(None, ge=0, le=1)
    #: Rename labels: recorded model name -> route name.
    labels: dict[str, str] = Field(default_factory=dict)
    embedder: str | dict[str, Any] | None = None


def build_classifier(cfg: LearnedClassifierConfig, b: BuildContext) -> LearnedClassifier:
    path = config_path(b, cfg.path)
    try:
        predictor = OutcomePredictor.load(path)
        clf = LearnedClassifier(predictor, b.embedder(cfg.embedder, "embedder"),
                                willingness_to_pay=cfg.willingness_to_pay,
                                cost_share=cfg.cost_share, labels=cfg.labels)
        clf.path = path
        return clf
    except ValueError as exc:
        raise b.error(str(exc), "path") from None
