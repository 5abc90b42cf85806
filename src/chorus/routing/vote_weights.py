"""Vote weights that depend on the question: the prompt space is cut into regions (k-means
over the prompts' embeddings), and each region has its own weight per member, learned
from recorded outcomes. A member that is right on law questions and wrong on arithmetic
gets a say on the first and little on the second.

The weights come from one logistic model of whether an answer is right, from which
members gave it, alone and within the prompt's region: a member's weight in a region is
its overall coefficient plus its coefficient there (the vote's answer is the label with
the largest total weight, as ``vote`` with ``by: weight``). Where the prompts list
options A, B, ..., the same model may also weigh where each answer stands among them
(``routing.choice_shape``): an answer's total is then its members' weights plus its
``bonus``, so that between two answers with as much support the more likely option wins.
Fitted by ``chorus tune``, saved as a folder, and read live by a vote:

    {kind: vote, models: [a, b, c], by: weight, weights_by: {path: votes/abc}}
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from chorus.routing._saved import read_saved
from chorus.routing.acceptance import AcceptanceModel
from chorus.routing.choice_shape import CHOICE_FEATURES, choice_features

__all__ = ["RegionWeights", "answer_rows", "coefficients"]

Array = npt.NDArray[np.float64]
_FORMAT = "chorus-region-weights/1"
#: The least weight a member keeps in a region (a vote's weights must be > 0).
FLOOR = 1e-3


def _unit(x: npt.ArrayLike) -> Array:
    a = np.atleast_2d(np.asarray(x, dtype=np.float64))
    return np.asarray(a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12))


def answer_rows(labels: npt.ArrayLike, right: npt.ArrayLike
                ) -> tuple[Array, npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """One row per distinct answer to an item, from each member's answer label per item
    (items x members ints, 0: none) and whether it was right (items x members): which
    members gave that answer (0/1), the item, and whether the answer was right."""
    lab = np.asarray(labels, dtype=np.int64)
    ok = np.asarray(right, dtype=bool)
    who, item, target = [], [], []
    for i in range(len(lab)):
        for label in np.unique(lab[i][lab[i] > 0]):
            gave = lab[i] == label
            who.append(gave.astype(np.float64))
            item.append(i)
            target.append(bool(ok[i, int(np.argmax(gave))]))
    m = lab.shape[1] if lab.ndim == 2 else 0
    return (np.asarray(who, dtype=np.float64).reshape(len(who), m),
            np.asarray(item, dtype=np.int64), np.asarray(target, dtype=bool))


def coefficients(features: Array, right: npt.NDArray[np.bool_], names: Sequence[str], *,
                 seed: int = 0) -> tuple[Array, float | None]:
    """The coefficients, on the features as given, of a logistic model of ``right``
    (``AcceptanceModel.fit``), and the L2 penalty it chose on a held-out quarter."""
    model = AcceptanceModel.fit(np.zeros((len(features), 0)), features, right, names=names,
                                seed=seed)
    return np.asarray(model.weights / model.scale), model.info.get("l2")


@dataclass
class RegionWeights:
    """Per region (a centroid of prompt embeddings), one weight per member."""

    members: tuple[str, ...]
    centroids: Array  # regions x dims, unit rows
    table: Array  # regions x members, every weight >= FLOOR
    info: dict[str, Any] = field(default_factory=dict)
    #: One coefficient per ``CHOICE_FEATURES`` (None: answers are weighed by who gave them
    #: alone).
    choice: Array | None = None

    def bonus(self, prompt: str, label: str | None) -> float:
        """What the answer ``label`` adds to its members' weights for ``prompt``: where it
        stands among the options the prompt lists (0 without ``choice``)."""
        if self.choice is None:
            return 0.0
        return float(np.dot(self.choice, choice_features(prompt, label)))

    def bonus_rows(self, prompts: Sequence[str], keys: Sequence[str],
                   labels: npt.ArrayLike) -> Array | None:
        """Per item and member, the ``bonus`` of that member's answer (``labels``: items x
        members indices into ``keys``, 0: none); None without ``choice``."""
        if self.choice is None:
            return None
        lab = np.asarray(labels, dtype=np.int64)
        out = np.zeros(lab.shape)
        for i, prompt in enumerate(prompts):
            for j, label in enumerate(lab[i]):
                if label > 0:
                    out[i, j] = self.bonus(prompt, keys[int(label)])
        return out

    def region(self, x: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """The region of each embedded prompt: its nearest centroid by cosine."""
        return np.asarray(np.argmax(_unit(x) @ self.centroids.T, axis=1), dtype=np.int64)

    def rows(self, x: npt.ArrayLike) -> Array:
        """The members' weights for each embedded prompt (prompts x members)."""
        return np.asarray(self.table[self.region(x)])

    def weights(self, vector: npt.ArrayLike) -> dict[str, float]:
        """The members' weights for one embedded prompt, by name."""
        return dict(zip(self.members, (float(w) for w in self.rows(vector)[0]), strict=True))

    @property
    def dims(self) -> int:
        return int(self.centroids.shape[1])

    @classmethod
    def fit(cls, x: npt.ArrayLike, labels: npt.ArrayLike, right: npt.ArrayLike,
            members: Sequence[str], *, regions: int, seed: int = 0,
            options: tuple[Sequence[str], Sequence[str]] | None = None) -> RegionWeights:
        """Fit on the items' prompt embeddings ``x``, each member's answer label per item
        (items x members ints, 0: none) and whether it was right (items x members);
        ``options``: the items' prompts and each label's answer (``keys[label]``), to
        weigh where an answer stands among the options too."""
        try:
            from sklearn.cluster import KMeans
        except ImportError as exc:  # pragma: no cover - comes with the embeddings extra
            from chorus.core.errors import MissingDependency

            raise MissingDependency("scikit-learn", "fitting region vote weights",
                                    "embeddings") from exc
        xs = _unit(x)
        lab = np.asarray(labels, dtype=np.int64)
        ok = np.asarray(right, dtype=bool)
        m = len(members)
        if lab.shape != (len(xs), m) or ok.shape != lab.shape:
            raise ValueError("labels and right must be items x members")
        if len(xs) < 10 * regions:
            raise ValueError(f"{regions} regions need at least {10 * regions} items")
        km = KMeans(regions, n_init=4, random_state=seed).fit(xs)
        who, item, target = answer_rows(lab, ok)
        inside = np.zeros((len(who), regions, m))
        inside[np.arange(len(who)), np.asarray(km.labels_)[item]] = who
        names = [*members, *(f"{r}:{n}" for r in range(regions) for n in members)]
        parts = [who, inside.reshape(len(who), -1)]
        if options is not None:
            prompts, keys = options
            label = lab[item, np.argmax(who, axis=1)]
            parts.append(np.asarray([choice_features(prompts[i], keys[int(k)])
                                     for i, k in zip(item, label, strict=True)],
                                    dtype=np.float64).reshape(len(who), -1))
            names += CHOICE_FEATURES
        w, l2 = coefficients(np.hstack(parts), target, names, seed=seed)
        cut = m + regions * m
        table = np.maximum(w[:m][None, :] + w[m:cut].reshape(regions, m), FLOOR)
        return cls(tuple(members), _unit(km.cluster_centers_), table,
                   {"items": int(len(xs)), "regions": regions, "l2": l2},
                   None if options is None else np.asarray(w[cut:]))

    def save(self, folder: str | Path) -> Path:
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        np.save(out / "centroids.npy", self.centroids)
        np.save(out / "table.npy", self.table)
        if self.choice is not None:
            np.save(out / "choice.npy", self.choice)
        (out / "region_weights.json").write_text(json.dumps(
            {"format": _FORMAT, "members": list(self.members), "info": self.info},
            indent=2) + "\n", "utf-8")
        return out

    @classmethod
    def load(cls, folder: str | Path) -> RegionWeights:
        root = Path(folder)
        meta, (centroids, table) = read_saved(root, "region_weights.json",
                                              ["centroids", "table"], _FORMAT,
                                              what="saved region vote weights")
        members = tuple(meta.get("members", ()))
        if table.shape != (centroids.shape[0], len(members)) or np.any(table <= 0):
            raise ValueError(f"{str(root)!r}: its weight table does not fit its members")
        choice = None
        if (root / "choice.npy").is_file():
            choice = np.load(root / "choice.npy").astype(np.float64)
            if choice.shape != (len(CHOICE_FEATURES),):
                raise ValueError(f"{str(root)!r}: its choice.npy holds {choice.shape[0]} "
                                 f"weights, not {len(CHOICE_FEATURES)}")
        return cls(members, centroids.astype(np.float64), table.astype(np.float64),
                   dict(meta.get("info", {})), choice)
