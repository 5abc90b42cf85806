"""Ensembles planned from recorded outcomes: which models a weighted vote should ask, and
with what weights, decided on a training table before any live call.

Each model's weight is the log-odds of its mean recorded score, log(p / (1 - p)): for
voters that err independently this is the weighting that maximises the chance the
weighted majority is right (Nitzan and Paroush, 1982). Only models right more often
than not (p > 0.5) get a positive weight, so only they are candidates. The size of the
ensemble is chosen by replaying the vote on the table: the models are taken best first,
and the size whose weighted vote scores best on the table wins (ties: the smaller).

    plan = plan_vote(train_rows, extract=extractor("choice"))
    print(vote_yaml(plan, extract="choice"))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import yaml

from chorus.eval.outcomes import OutcomeItem, require_models
from chorus.patterns.agreement import Answer, group_exact, pick

__all__ = ["VotePlan", "log_odds", "plan_vote", "replay_vote", "vote_system", "vote_yaml"]

Extract = Callable[[str], "str | None"]


def log_odds(p: float, eps: float = 1e-3) -> float:
    """log(p / (1 - p)), with p kept inside [eps, 1 - eps] so a perfect record stays finite."""
    p = min(max(p, eps), 1.0 - eps)
    return math.log(p / (1.0 - p))


def _mean_scores(rows: Sequence[OutcomeItem], models: Sequence[str]) -> dict[str, float]:
    """Each model's mean score over the rows; a missing score counts as 0."""
    n = max(len(rows), 1)
    return {m: sum((r.outcomes[m].score or 0.0) if m in r.outcomes else 0.0 for r in rows) / n
            for m in models}


def replay_vote(rows: Sequence[OutcomeItem], members: Sequence[str],
                weights: Mapping[str, float], extract: Extract) -> float:
    """The mean score a weighted vote of ``members`` would have had on ``rows``.

    Per row, each member's recorded response votes for its extracted answer with its
    weight (no response or no answer: no vote); the answer with the largest total wins,
    ties going to the earliest member, as ``Vote(by="weight", tie_break="order")`` does.
    The vote's score is the recorded score of a member that gave the winning answer.
    A row where nobody voted scores 0.
    """
    if not rows:
        return 0.0
    total = 0.0
    for row in rows:
        answers = []
        for i, m in enumerate(members):
            out = row.outcomes.get(m)
            if out is None or not out.response:
                continue
            key = extract(out.response)
            if key:
                answers.append(Answer(i, m, key, out.response, weights[m]))
        if not answers:
            continue
        # The vote's own grouping and decision, so the replay cannot drift from it.
        winner, _ = pick(group_exact(answers), "order", lambda g: g.weight)
        total += row.outcomes[winner.representative.model].score or 0.0
    return total / len(rows)


@dataclass(frozen=True, slots=True)
class VotePlan:
    """The chosen members (best first), their weights, and what each size scored."""

    models: list[str]
    weights: dict[str, float]
    #: Every model's mean recorded score, best first.
    accuracy: dict[str, float]
    #: Ensemble size -> the replayed weighted vote's mean score on the table.
    quality_by_size: dict[int, float] = field(default_factory=dict)


def plan_vote(rows: Sequence[OutcomeItem], *, extract: Extract,
              models: Sequence[str] | None = None, max_models: int = 12) -> VotePlan:
    """The weighted vote that scores best on ``rows`` (see the module's docstring)."""
    if not rows:
        raise ValueError("the outcome table is empty")
    if max_models < 1:
        raise ValueError("max_models must be at least 1")
    names = require_models(rows, models)
    acc = _mean_scores(rows, names)
    ranked = sorted(names, key=lambda m: -acc[m])
    candidates = [m for m in ranked if acc[m] > 0.5][:max_models]
    if not candidates:
        best = ranked[0] if ranked else "?"
        raise ValueError(f"no model scores above 0.5 on this table (best: {best} at "
                         f"{acc.get(best, 0.0):.3f}); a weighted majority needs voters that "
                         "are right more often than not")
    weights = {m: log_odds(acc[m]) for m in candidates}
    quality = {k: replay_vote(rows, candidates[:k], weights, extract)
               for k in range(1, len(candidates) + 1)}
    size = max(quality, key=lambda k: (quality[k], -k))
    chosen = candidates[:size]
    return VotePlan(chosen, {m: weights[m] for m in chosen},
                    {m: acc[m] for m in ranked}, quality)


def vote_system(plan: VotePlan, *, extract: str | None = None) -> dict[str, object]:
    """The plan as the mapping of a ``vote`` system in a config."""
    system: dict[str, object] = {"kind": "vote", "models": list(plan.models), "by": "weight",
                                 "weights": {m: round(w, 4) for m, w in plan.weights.items()}}
    if extract:
        system["extract"] = extract
    return system


def vote_yaml(plan: VotePlan, *, name: str = "weighted_vote", extract: str | None = None
              ) -> str:
    """The plan as a ``systems:`` entry for a chorus config file."""
    return yaml.safe_dump({"systems": {name: vote_system(plan, extract=extract)}},
                          sort_keys=False, width=100)
