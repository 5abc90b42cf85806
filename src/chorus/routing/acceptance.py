"""Learned acceptance: how likely is a cheap stage's answer to be right, given the prompt
and the answer itself (the FrugalGPT idea: a scorer reads the query and the answer, and
the cascade stops when the score clears a threshold).

The model is a logistic regression over the prompt's embedding and a few features of
the answer: how many of the stage's models agree with it, whether an answer could be
read from it at all, how many distinct answers the stage gave and, when it names the
stage's ``members``, which of them agree with it (a strong member agreeing counts for
more than a weak one), the shape of the answer's text (``routing.answer_shape``: its
length, whether it states a final answer, whether its worked arithmetic holds) and, for
answers that are labels, which label it is (``answers``: a model that answers "A" when it
guesses, or "yes" too readily, is right less often when it says so) and, for a
multiple-choice prompt, where the chosen option stands among the options
(``routing.choice_shape``: the longest, the shortest, an extreme number). It may
carry a ``rival``: P(the escalation's answer is right | prompt), so that the check
escalates where escalating gains most, not only where the cheap answer is weakest; its
score is then ``(P + gain * (1 - P_rival)) / (1 + gain)``, in [0, 1] and equal to P when
``gain`` is 0. It may carry a ``price`` too: a ridge regression of log(what escalating
costs) on the prompt's embedding and the stage's output tokens (a cheap model that writes
long answers is on a question the strong one answers at length), so that escalations go
where they gain most per dollar; the score is then ``1 / (1 + loss / c ** weight)``, where
``loss`` is one minus the score above and ``c`` the predicted cost over its mean: a
knapsack's order, still in (0, 1]. Fitted on recorded outcomes (``chorus tune`` does it),
saved as a folder, and used live by a cascade stage:

    check: {type: learned, path: accept/flash-deepseek, threshold: 0.7, extract: choice}
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from chorus.routing._saved import read_saved
from chorus.routing.answer_shape import SHAPE_FEATURES, shape_features
from chorus.routing.choice_shape import CHOICE_FEATURES

__all__ = ["AcceptanceModel", "PriceModel", "answer_features", "tally_features",
           "ANSWER_FEATURES", "SHAPE_FEATURES"]

Array = npt.NDArray[np.float64]
_FORMAT = "chorus-acceptance/1"
#: The prefix of a feature that is 1 when the stage gave that answer.
_ANSWER = "answer:"

#: The answer features, in order (after the prompt's embedding).
ANSWER_FEATURES = ("agree_share", "answered", "distinct_share")


def answer_features(agreeing: int, asked: int, answered: bool, distinct: int,
                    agrees: Sequence[bool] = (), *, text: str | None = None
                    ) -> list[float]:
    """The answer's features: the share of the stage's ``asked`` models that gave this
    answer, whether an answer label was found in it, the share of distinct answers
    (1 / asked when all agree), then, when ``text`` is given, the ``SHAPE_FEATURES`` of
    the answer's text, then one 0/1 per named member: it gave this answer."""
    asked = max(asked, 1)
    shape = shape_features(text) if text is not None else []
    return [agreeing / asked, 1.0 if answered else 0.0, max(distinct, 1) / asked,
            *shape, *(1.0 if a else 0.0 for a in agrees)]


def tally_features(tally: Mapping[str, Mapping[str, Any]] | None, asked: int,
                   answered: bool, *, winner: str | None = None,
                   members: Sequence[str] = (), text: str | None = None) -> list[float]:
    """``answer_features`` from a vote's tally (label -> {count, models, ...}) and its
    ``winner`` label; a stage without a tally is one model, agreeing with itself when it
    answered. ``text``: the answer's text, for a model fitted with ``SHAPE_FEATURES``."""
    if not tally:
        return answer_features(1 if answered else 0, 1, answered, 1,
                               [answered] * len(members), text=text)
    won = tally.get(winner) if winner is not None else None
    if won is None:  # no winner named: the largest group
        won = max(tally.values(), key=lambda row: int(row.get("count", 0)))
    voters = set(won.get("models") or ())
    # The winner's own count: a weighted vote's winner need not be the largest group.
    return answer_features(int(won.get("count", 0)), asked, answered, len(tally),
                           [m in voters for m in members], text=text)


def _sigmoid(z: Array) -> Array:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -30, 30))))


#: The L2 penalties (per item, on standardised features) ``fit`` chooses from.
L2_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)


#: How much less than the embedding's the answer features' penalty may be (``fit``
#: chooses): hundreds of weak embedding dimensions need a strong penalty, which would
#: also flatten the few answer features that each say much.
FEATURE_PENALTY_RATIOS = (1.0, 0.1, 0.01)


def _newton(z: Array, y: Array, l2: float, steps: int = 25, *, dims: int | None = None,
            ratio: float = 1.0) -> Array:
    """Logistic regression weights (the last column of ``z`` is the bias, unpenalised;
    the columns from ``dims`` on, the answer features, penalised ``ratio`` times as
    much as the embedding's)."""
    w = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    if dims is not None:
        penalty[dims:] = l2 * ratio
    penalty[-1] = 0.0
    for _ in range(steps):
        p = _sigmoid(z @ w)
        grad = z.T @ (p - y) / len(y) + penalty * w
        hess = (z * (p * (1 - p))[:, None]).T @ z / len(y) + np.diag(penalty + 1e-9)
        delta = np.linalg.solve(hess, grad)
        w -= delta
        if float(np.max(np.abs(delta))) < 1e-6:
            break
    return w


#: The ridge penalties (per item, on standardised inputs) ``PriceModel.fit`` chooses from.
RIDGE_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)


def _ridge(z: Array, y: Array, penalty: float) -> Array:
    """Ridge weights (the last column of ``z`` is the bias, unpenalised)."""
    pen = np.full(z.shape[1], penalty * len(y))
    pen[-1] = 0.0
    return np.asarray(np.linalg.solve(z.T @ z + np.diag(pen + 1e-9), z.T @ y))


@dataclass
class PriceModel:
    """log(the escalation's cost) from the prompt's embedding and log(1 + the stage's
    output tokens), as a ridge regression; ``relative`` is the predicted cost over the
    mean predicted on the items it was fitted on."""

    weights: Array
    bias: float
    mean: Array
    scale: Array
    center: float
    info: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def _inputs(x: npt.ArrayLike, tokens: npt.ArrayLike) -> Array:
        xs = np.atleast_2d(np.asarray(x, dtype=np.float64))
        t = np.log1p(np.maximum(np.asarray(tokens, dtype=np.float64).reshape(len(xs)), 0))
        return np.hstack([xs, t[:, None]])

    @classmethod
    def fit(cls, x: npt.ArrayLike, tokens: npt.ArrayLike, cost: npt.ArrayLike, *,
            seed: int = 0) -> PriceModel:
        """Fit on embeddings, the stage's output tokens and the escalation's recorded cost
        (USD) per item; the penalty is the one of ``RIDGE_GRID`` with the least squared
        error on a held-out quarter of the items (then refitted on all of them)."""
        z = cls._inputs(x, tokens)
        c = np.asarray(cost, dtype=np.float64).reshape(len(z))
        if len(z) < 20 or not np.all(np.isfinite(c)) or np.any(c < 0):
            raise ValueError("need at least 20 items with a known escalation cost")
        y = np.log(c + max(float(np.median(c)), 1e-12) * 0.01)
        mean, scale = z.mean(axis=0), z.std(axis=0)
        scale = np.where(scale > 1e-9, scale, 1.0)
        zs = np.hstack([(z - mean) / scale, np.ones((len(z), 1))])
        order = np.random.default_rng(seed).permutation(len(y))
        val, tr = order[:len(y) // 4], order[len(y) // 4:]
        errors = {r: float(np.mean((zs[val] @ _ridge(zs[tr], y[tr], r) - y[val]) ** 2))
                  for r in RIDGE_GRID}
        penalty = min(errors, key=lambda r: (errors[r], -r))
        w = _ridge(zs, y, penalty)
        fitted = zs @ w
        return cls(w[:-1], float(w[-1]), mean, scale, float(fitted.mean()),
                   {"items": int(len(y)), "ridge": penalty,
                    "r2": round(1 - float(np.var(y - fitted)) / max(float(np.var(y)), 1e-12),
                                4)})

    def relative(self, x: npt.ArrayLike, tokens: npt.ArrayLike) -> Array:
        z = self._inputs(x, tokens)
        log_cost = ((z - self.mean) / self.scale) @ self.weights + self.bias
        return np.asarray(np.exp(np.clip(log_cost - self.center, -20, 20)))

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "price.npy", np.stack([self.weights, self.mean, self.scale]))
        (folder / "price.json").write_text(json.dumps(
            {"bias": self.bias, "center": self.center, "info": self.info}, indent=2) + "\n",
            "utf-8")

    @classmethod
    def load(cls, folder: Path) -> PriceModel:
        meta = json.loads((folder / "price.json").read_text("utf-8"))
        arrays = np.load(folder / "price.npy")
        return cls(arrays[0], float(meta["bias"]), arrays[1], arrays[2], float(meta["center"]),
                   dict(meta.get("info", {})))


@dataclass
class AcceptanceModel:
    """P(the stage's answer is right | prompt embedding, answer features)."""

    weights: Array
    bias: float
    mean: Array
    scale: Array
    info: dict[str, Any] = field(default_factory=dict)
    #: The names of the features after the embedding.
    features: tuple[str, ...] = ANSWER_FEATURES
    #: The stage's models whose agreement with the answer is a feature, in order.
    members: tuple[str, ...] = ()
    #: P(the escalation is right | prompt), weighed by ``gain`` in ``score``.
    rival: AcceptanceModel | None = None
    gain: float = 0.0
    #: The escalation's predicted cost, weighed by ``price_weight`` in ``score``.
    price: PriceModel | None = None
    price_weight: float = 0.0

    @classmethod
    def fit(cls, x: npt.ArrayLike, features: npt.ArrayLike, right: npt.ArrayLike, *,
            l2: float | None = None, seed: int = 0, members: Sequence[str] = (),
            names: Sequence[str] | None = None, shape: bool = False,
            answers: Sequence[str] = (), choices: bool = False) -> AcceptanceModel:
        """Fit on embeddings ``x`` (items x dims), answer features (items x 3, then the
        ``SHAPE_FEATURES`` when ``shape``, then one column per name in ``members``, then
        one per answer in ``answers``: the stage answered it, then the
        ``CHOICE_FEATURES`` when ``choices``) and whether each answer was right (0/1): a
        logistic regression by Newton's method.
        ``names`` overrides the feature names (``()``: the prompt alone, as a rival is
        fitted). Without ``l2`` the penalty is the one of ``L2_GRID`` with the best log
        loss on a held-out quarter of the items, then the answer features' share of it
        the one of ``FEATURE_PENALTY_RATIOS`` with the best (then refitted on all of
        them); with ``l2``, every input is penalised alike."""
        if names is None:
            names = (*ANSWER_FEATURES, *(SHAPE_FEATURES if shape else ()),
                     *(f"agrees:{m}" for m in members), *(f"{_ANSWER}{a}" for a in answers),
                     *(CHOICE_FEATURES if choices else ()))
        f = np.asarray(features, dtype=np.float64).reshape(len(np.asarray(x)), -1)
        if f.shape[1] != len(names):
            raise ValueError(f"expected {len(names)} answer features, got {f.shape[1]}")
        z = np.hstack([np.asarray(x, dtype=np.float64), f])
        y = np.asarray(right, dtype=np.float64)
        if z.shape[0] < 20 or z.shape[0] != y.shape[0]:
            raise ValueError(f"need at least 20 answers with outcomes, got {z.shape[0]}")
        mean, scale = z.mean(axis=0), z.std(axis=0)
        scale = np.where(scale > 1e-9, scale, 1.0)
        zs = np.hstack([(z - mean) / scale, np.ones((z.shape[0], 1))])
        dims = int(np.asarray(x).shape[1])
        losses: dict[float, float] = {}
        ratios: dict[float, float] = {}
        ratio = 1.0
        if l2 is None:
            order = np.random.default_rng(seed).permutation(len(y))
            cut = len(y) // 4
            val, tr = order[:cut], order[cut:]

            def loss(c: float, r: float) -> float:
                w = _newton(zs[tr], y[tr], c, dims=dims, ratio=r)
                p = np.clip(_sigmoid(zs[val] @ w), 1e-6, 1 - 1e-6)
                return float(-np.mean(y[val] * np.log(p) + (1 - y[val]) * np.log(1 - p)))

            losses = {c: loss(c, 1.0) for c in L2_GRID}
            l2 = min(losses, key=lambda c: (losses[c], -c))
            if f.shape[1]:  # then how much less the answer features are penalised
                ratios = {r: (losses[l2] if r == 1.0 else loss(l2, r))
                          for r in FEATURE_PENALTY_RATIOS}
                ratio = min(ratios, key=lambda r: (ratios[r], -r))
        w = _newton(zs, y, l2, dims=dims, ratio=ratio)
        return cls(w[:-1], float(w[-1]), mean, scale,
                   {"items": int(len(y)), "l2": l2, "feature_penalty_ratio": ratio,
                    "mean_right": float(y.mean()),
                    "l2_chosen_from": {str(k): round(v, 5) for k, v in losses.items()},
                    "ratio_chosen_from": {str(k): round(v, 5) for k, v in ratios.items()}},
                   tuple(names), tuple(members))

    def with_rival(self, rival: AcceptanceModel | None, gain: float) -> AcceptanceModel:
        """This model, its score weighing ``rival`` (fitted with ``names=()``) by ``gain``."""
        if rival is not None and rival.features:
            raise ValueError("a rival reads the prompt alone (fit it with names=())")
        if gain < 0:
            raise ValueError(f"gain must be at least 0, got {gain}")
        return replace(self, rival=rival, gain=gain if rival is not None else 0.0)

    def with_price(self, price: PriceModel | None, weight: float) -> AcceptanceModel:
        """This model, its score dividing the loss of accepting by the escalation's
        predicted relative cost to the power ``weight`` (0: cost left out)."""
        if weight < 0:
            raise ValueError(f"the price weight must be at least 0, got {weight}")
        return replace(self, price=price, price_weight=weight if price is not None else 0.0)

    @property
    def priced(self) -> bool:
        """Whether ``score`` needs the stage's output tokens (it weighs the price)."""
        return self.price is not None and self.price_weight > 0

    def predict(self, x: npt.ArrayLike, features: npt.ArrayLike) -> Array:
        """P(the answer is right) per row."""
        xs = np.atleast_2d(np.asarray(x, dtype=np.float64))
        f = np.asarray(features, dtype=np.float64).reshape(len(xs), -1)
        z = np.hstack([xs, f])
        return _sigmoid(((z - self.mean) / self.scale) @ self.weights + self.bias)

    def score(self, x: npt.ArrayLike, features: npt.ArrayLike,
              tokens: npt.ArrayLike | None = None) -> Array:
        """What the check compares with its threshold: ``predict`` without a rival, else
        ``(P + gain * (1 - P_rival)) / (1 + gain)`` (high: accepting loses little); when
        ``priced``, ``1 / (1 + (1 - that) / relative_cost ** price_weight)``, which needs
        the stage's output ``tokens`` per row."""
        xs = np.atleast_2d(np.asarray(x, dtype=np.float64))
        s = self.predict(xs, features)
        if self.rival is not None and self.gain > 0:
            pr = self.rival.predict(xs, np.zeros((len(xs), 0)))
            s = np.asarray((s + self.gain * (1 - pr)) / (1 + self.gain))
        if not self.priced:
            return s
        if tokens is None:
            raise ValueError("this acceptance model weighs the escalation's price: "
                             "give the stage's output tokens")
        assert self.price is not None
        rel = self.price.relative(xs, tokens)
        return np.asarray(1.0 / (1.0 + (1.0 - s) / rel ** self.price_weight))

    def save(self, folder: str | Path) -> Path:
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        np.save(out / "weights.npy", np.stack([self.weights, self.mean, self.scale]))
        meta = {"format": _FORMAT, "bias": self.bias, "features": list(self.features),
                "members": list(self.members), "gain": self.gain,
                "price_weight": self.price_weight, "info": self.info}
        if self.rival is not None:
            self.rival.save(out / "rival")
        if self.price is not None:
            self.price.save(out / "price")
        (out / "acceptance.json").write_text(json.dumps(meta, indent=2) + "\n", "utf-8")
        return out

    @classmethod
    def load(cls, folder: str | Path) -> AcceptanceModel:
        root = Path(folder)
        meta, (arrays,) = read_saved(root, "acceptance.json", ["weights"], _FORMAT,
                                     what="a saved acceptance model")
        rival = cls.load(root / "rival") if (root / "rival").is_dir() else None
        try:
            price = PriceModel.load(root / "price") if (root / "price").is_dir() else None
        except (OSError, ValueError, KeyError) as exc:
            raise ValueError(f"{str(root)!r}: its price model does not load ({exc})") from None
        return cls(arrays[0], float(meta["bias"]), arrays[1], arrays[2],
                   dict(meta.get("info", {})),
                   tuple(meta.get("features", ANSWER_FEATURES)),
                   tuple(meta.get("members", ())), rival,
                   float(meta.get("gain", 0.0)) if rival is not None else 0.0,
                   price, float(meta.get("price_weight", 0.0)) if price is not None else 0.0)

    @property
    def dims(self) -> int:
        """The embedding size it was fitted on."""
        return int(self.weights.shape[0] - len(self.features))

    @property
    def answers(self) -> tuple[str, ...]:
        """The answers it has a 0/1 feature for (the stage answered it), in order."""
        return tuple(f[len(_ANSWER):] for f in self.features if f.startswith(_ANSWER))

    @property
    def reads_text(self) -> bool:
        """Whether it was fitted with the ``SHAPE_FEATURES`` of the answer's text (a model
        saved before they existed was not)."""
        return SHAPE_FEATURES[0] in self.features

    @property
    def reads_choices(self) -> bool:
        """Whether it was fitted with the ``CHOICE_FEATURES`` (where the answer stands
        among the options the prompt lists)."""
        return CHOICE_FEATURES[0] in self.features
