"""What ``chorus tune`` searches with: a candidate system and its run on the training items,
the Pareto frontier of a set of them, and the folds fitted parts are cross-fitted on."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from chorus.eval import _replay as rp
from chorus.routing.acceptance import AcceptanceModel
from chorus.routing.learned import OutcomePredictor
from chorus.routing.vote_weights import RegionWeights

__all__ = ["Candidate", "FOLDS", "frontier", "out_of_fold", "short_name"]

Array = npt.NDArray[np.float64]

#: The folds a fitted part is cross-fitted on.
FOLDS = 3


@dataclass
class Candidate:
    """One system: its ``systems:`` entry (naming models by their table names), its bench
    kind, its replay on the training items (out of fold where it is fitted), and the
    learned parts it needs on disk."""

    name: str
    family: str
    kind: str
    spec: str | dict[str, Any]
    held_out: rp.Run
    parts: dict[str, AcceptanceModel | OutcomePredictor | RegionWeights] = field(
        default_factory=dict)

    @property
    def quality(self) -> float:
        return self.held_out.quality

    @property
    def cost(self) -> float:
        """Its mean cost per training item it was judged on (every one)."""
        return float(self.held_out.cost.mean()) if self.held_out.cost.size else 0.0


def frontier(cands: Sequence[Candidate]) -> list[Candidate]:
    """The candidates no other beats on held-out quality and cost, cheapest first."""
    out: list[Candidate] = []
    best = -np.inf
    for c in sorted(cands, key=lambda c: (c.cost, -c.quality)):
        if c.quality > best + 1e-12:
            out.append(c)
            best = c.quality
    return out


def short_name(models: Sequence[str]) -> str:
    """Models' names as a system's name shows them: short, lower case, joined by "+"."""
    short = [m.split("/")[-1].replace("_", "-").lower()[:24] for m in models]
    return "+".join(short)


def out_of_fold(folds: npt.NDArray[np.int64],
                score_fold: Callable[[npt.NDArray[np.int64], npt.NDArray[np.int64]], Array]
                ) -> Array:
    """Each item's score from a part fitted without its fold: ``score_fold(rest, fold)``
    (the items to fit on, the items to score)."""
    score = np.zeros(len(folds))
    for k in range(FOLDS):
        fold, rest = np.flatnonzero(folds == k), np.flatnonzero(folds != k)
        score[fold] = score_fold(rest, fold)
    return score
