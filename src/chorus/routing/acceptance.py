"""Learned acceptance: how likely is a cheap stage's answer to be right, given the prompt
and the answer itself (the FrugalGPT idea: a scorer reads the query and the answer, and
the cascade stops when the score clears a threshold).

The model is a logistic regression over the prompt's embedding and a few features of
the answer: how many of the stage's models agree with it, whether an answer could be
read from it at all, and how many distinct answers the stage gave. Fitted on recorded
outcomes (``chorus tune`` does it), saved as a folder, and used live by a cascade stage:

    check: {type: learned, path: accept/flash-deepseek, threshold: 0.7, extract: choice}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["AcceptanceModel", "answer_features", "tally_features", "ANSWER_FEATURES"]

Array = npt.NDArray[np.float64]
_FORMAT = "chorus-acceptance/1"

#: The answer features, in order (after the prompt's embedding).
ANSWER_FEATURES = ("agree_share", "answered", "distinct_share")


def answer_features(agreeing: int, asked: int, answered: bool, distinct: int) -> list[float]:
    """The answer's features: the share of the stage's ``asked`` models that gave this
    answer, whether an answer label was found in it, and the share of distinct answers
    (1 / asked when all agree)."""
    asked = max(asked, 1)
    return [agreeing / asked, 1.0 if answered else 0.0, max(distinct, 1) / asked]


def tally_features(tally: Mapping[str, Mapping[str, Any]] | None, asked: int,
                   answered: bool) -> list[float]:
    """``answer_features`` from a vote's tally (label -> {count, ...}); a stage without a
    tally is one model, agreeing with itself when it answered."""
    if not tally:
        return answer_features(1 if answered else 0, 1, answered, 1)
    counts = [int(row.get("count", 0)) for row in tally.values()]
    return answer_features(max(counts), asked, answered, len(counts))


def _sigmoid(z: Array) -> Array:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -30, 30))))


#: The L2 penalties (per item, on standardised features) ``fit`` chooses from.
L2_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)


def _newton(z: Array, y: Array, l2: float, steps: int = 25) -> Array:
    """Logistic regression weights (the last column of ``z`` is the bias, unpenalised)."""
    w = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
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


@dataclass
class AcceptanceModel:
    """P(the stage's answer is right | prompt embedding, answer features)."""

    weights: Array
    bias: float
    mean: Array
    scale: Array
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(cls, x: npt.ArrayLike, features: npt.ArrayLike, right: npt.ArrayLike, *,
            l2: float | None = None, seed: int = 0) -> AcceptanceModel:
        """Fit on embeddings ``x`` (items x dims), answer features (items x 3) and
        whether each answer was right (0/1): a logistic regression by Newton's method.
        Without ``l2`` the penalty is the one of ``L2_GRID`` with the best log loss on a
        held-out quarter of the items (then refitted on all of them)."""
        z = np.hstack([np.asarray(x, dtype=np.float64), np.asarray(features, dtype=np.float64)])
        y = np.asarray(right, dtype=np.float64)
        if z.shape[0] < 20 or z.shape[0] != y.shape[0]:
            raise ValueError(f"need at least 20 answers with outcomes, got {z.shape[0]}")
        mean, scale = z.mean(axis=0), z.std(axis=0)
        scale = np.where(scale > 1e-9, scale, 1.0)
        zs = np.hstack([(z - mean) / scale, np.ones((z.shape[0], 1))])
        losses: dict[float, float] = {}
        if l2 is None:
            order = np.random.default_rng(seed).permutation(len(y))
            cut = len(y) // 4
            val, tr = order[:cut], order[cut:]
            for c in L2_GRID:
                p = np.clip(_sigmoid(zs[val] @ _newton(zs[tr], y[tr], c)), 1e-6, 1 - 1e-6)
                losses[c] = float(-np.mean(y[val] * np.log(p) + (1 - y[val]) * np.log(1 - p)))
            l2 = min(losses, key=lambda c: (losses[c], -c))
        w = _newton(zs, y, l2)
        return cls(w[:-1], float(w[-1]), mean, scale,
                   {"items": int(len(y)), "l2": l2, "mean_right": float(y.mean()),
                    "l2_chosen_from": {str(k): round(v, 5) for k, v in losses.items()}})

    def predict(self, x: npt.ArrayLike, features: npt.ArrayLike) -> Array:
        z = np.hstack([np.atleast_2d(np.asarray(x, dtype=np.float64)),
                       np.atleast_2d(np.asarray(features, dtype=np.float64))])
        return _sigmoid(((z - self.mean) / self.scale) @ self.weights + self.bias)

    def save(self, folder: str | Path) -> Path:
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        np.save(out / "weights.npy", np.stack([self.weights, self.mean, self.scale]))
        meta = {"format": _FORMAT, "bias": self.bias, "features": list(ANSWER_FEATURES),
                "info": self.info}
        (out / "acceptance.json").write_text(json.dumps(meta, indent=2) + "\n", "utf-8")
        return out

    @classmethod
    def load(cls, folder: str | Path) -> AcceptanceModel:
        root = Path(folder)
        try:
            meta = json.loads((root / "acceptance.json").read_text("utf-8"))
            arrays = np.load(root / "weights.npy")
        except (OSError, ValueError) as exc:
            raise ValueError(f"{str(root)!r} is not a saved acceptance model ({exc})") from None
        if meta.get("format") != _FORMAT:
            raise ValueError(f"{str(root)!r}: unknown format {meta.get('format')!r}")
        return cls(arrays[0], float(meta["bias"]), arrays[1], arrays[2],
                   dict(meta.get("info", {})))

    @property
    def dims(self) -> int:
        """The embedding size it was fitted on."""
        return int(self.weights.shape[0] - len(ANSWER_FEATURES))
