"""The learned-acceptance cascades ``chorus tune`` searches (the FrugalGPT idea): a cheap
stage answers, a logistic model reads the prompt and the answer and accepts it or
escalates to the strongest model. The stage is one model, a plain vote of cheap models,
or a vote of them whose weights depend on the question's region of the prompt space and
on where each answer stands among the prompt's options (``routing.vote_weights``): when
the cheap models disagree, the answer the stage keeps matters as much as whether to keep
it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from chorus.eval import _replay as rp
from chorus.eval._candidates import FOLDS, Candidate, frontier, short_name
from chorus.eval.answer_kind import common_answers
from chorus.routing.acceptance import AcceptanceModel, PriceModel
from chorus.routing.vote_weights import RegionWeights

__all__ = ["GAINS", "PRICE_WEIGHTS", "STAGE_REGIONS", "WeightedStage", "acceptance_cascades",
           "cross_fit_region_weights", "fit_rival", "weighted_stage"]

Array = npt.NDArray[np.float64]

#: The weights a check may give the escalation's chance (0: the stage's own alone).
GAINS = (0.0, 0.5, 1.0)
#: The powers of the escalation's predicted relative cost a check may divide its loss by.
PRICE_WEIGHTS = (0.0, 0.5, 1.0)
#: The regions of the prompt space a weighted stage's vote cuts it into.
STAGE_REGIONS = 4


@dataclass
class WeightedStage:
    """A stage's vote weights: per training item, the weights (items x members) and the
    option bonus (items x members) of the region weights fitted without its fold, and
    the region weights fitted on every item, which the system ships at ``path``."""

    rows: Array
    bonus: Array
    weights: RegionWeights
    path: str


def cross_fit_region_weights(t: rp.Table, x: Array, folds: npt.NDArray[np.int64],
                             members: list[int], names: list[str], *, regions: int,
                             seed: int = 0, choices: bool = False
                             ) -> tuple[Array, Array, RegionWeights]:
    """Region weights for the vote of ``members``, cross-fitted on ``folds``: per item,
    the weights (items x members) and option bonus (items x members; 0 where the prompts
    list no options) of the weights fitted without its fold, then the weights fitted on
    every item, which a system ships. ``choices``: the weights weigh where each answer
    stands among the prompt's options too. Raises ValueError when they cannot be fitted."""
    member_names = [names[j] for j in members]
    labels, right = t.labels[:, members], t.scores[:, members] > 0.5

    def options(idx: npt.NDArray[np.int64]) -> tuple[list[str], list[str]] | None:
        return ([t.prompts[i] for i in idx], t.keys) if choices else None

    rows, bonus = np.zeros(labels.shape), np.zeros(labels.shape)
    for k in range(FOLDS):
        rest, fold = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
        w = RegionWeights.fit(x[rest], labels[rest], right[rest], member_names,
                              regions=regions, seed=seed, options=options(rest))
        rows[fold] = w.rows(x[fold])
        b = w.bonus_rows([t.prompts[i] for i in fold], t.keys, labels[fold])
        if b is not None:  # None: the weights read no options, nothing to add
            bonus[fold] = b
    final = RegionWeights.fit(x, labels, right, member_names, regions=regions, seed=seed,
                              options=options(np.arange(len(t))))
    return rows, bonus, final


def weighted_stage(t: rp.Table, x: Array, folds: npt.NDArray[np.int64],
                   stage: tuple[int, ...], names: list[str], *, seed: int = 0,
                   choices: bool = False) -> WeightedStage | None:
    """Region weights for the vote of ``stage``, cross-fitted on ``folds``; None when they
    cannot be fitted, or when their vote is no better out of fold than the plain one
    (then the plain stage is all there is to search)."""
    members = list(stage)
    try:
        rows, bonus, final = cross_fit_region_weights(t, x, folds, members, names,
                                                      regions=STAGE_REGIONS, seed=seed,
                                                      choices=choices)
    except ValueError:
        return None
    if rp.voted(t, members, rows, bonus).quality <= rp.voted(t, members).quality:
        return None
    path = f"votes/stage-{short_name([names[j] for j in members])}-k{STAGE_REGIONS}"
    return WeightedStage(rows, bonus, final, path)


def fit_rival(t: rp.Table, x: Array, rows: npt.NDArray[np.bool_], strong: int
              ) -> AcceptanceModel | None:
    """P(the strongest model is right | prompt), fitted on ``rows``; None when it cannot
    be (too few items, or one outcome only)."""
    try:
        return AcceptanceModel.fit(x[rows], np.zeros((int(rows.sum()), 0)),
                                   t.scores[rows, strong] > 0.5, names=())
    except ValueError:
        return None


def acceptance_cascades(t: rp.Table, x: Array, folds: npt.NDArray[np.int64],
                        stage: tuple[int, ...], names: list[str], strong: int,
                        rivals: list[AcceptanceModel | None], extract_spec: dict[str, Any],
                        *, choices: bool = False, weighted: WeightedStage | None = None
                        ) -> list[Candidate]:
    """Cascades ``stage`` -> the strongest model, accepted by a learned model, one per
    gain, price weight and threshold, replayed on every training item with the scores of
    the parts fitted without its fold (``rivals``: one per fold, then one on all items);
    the ones on that replay's frontier, shipping the parts fitted on all items.
    ``choices``: the check reads where the answer stands among the prompt's options;
    ``weighted``: the stage is a vote of region weights (``weighted_stage``), whose answer
    the check reads."""
    vote_w = {} if weighted is None else {"weights": weighted.rows, "bonus": weighted.bonus}
    by_member = len(stage) > 1
    members = [names[j] for j in stage] if by_member else []
    # A number is a value, not a class: "10" says nothing of how often "10" is right.
    answers = [] if extract_spec.get("extract") == "number" else common_answers(t, stage)
    feats, who = rp.stage_features(t, stage, by_member=by_member, answers=answers,
                                   choices=choices, **vote_w)
    right = np.where(who >= 0, t.scores[np.arange(len(t)), np.maximum(who, 0)], 0.0) > 0.5
    tokens = t.stage_tokens(stage)
    settings = [(g, w) for g in (GAINS if rivals[-1] is not None else (0.0,))
                for w in PRICE_WEIGHTS]

    def models(rows: npt.NDArray[np.bool_], rival: AcceptanceModel | None
               ) -> dict[tuple[float, float], AcceptanceModel]:
        # A single model's answer is read whole (its length, its final answer, its
        # arithmetic); a vote's is the bare label it settled on.
        base = AcceptanceModel.fit(x[rows], feats[rows], right[rows], members=members,
                                   shape=not by_member, answers=answers, choices=choices)
        try:
            price: PriceModel | None = PriceModel.fit(x[rows], tokens[rows],
                                                      t.costs[rows, strong])
        except ValueError:
            price = None
        out = {}
        for gain, weight in settings:
            if weight and price is None:
                continue
            m = base.with_rival(rival, gain) if gain else base
            out[gain, weight] = m.with_price(price, weight) if weight else m
        return out

    scores: dict[tuple[float, float], Array] = {}
    try:
        for k in range(FOLDS):
            fold = folds == k
            for key, m in models(~fold, rivals[k]).items():
                scores.setdefault(key, np.zeros(len(t)))[fold] = m.score(x[fold], feats[fold],
                                                                         tokens[fold])
        final = models(np.ones(len(t), dtype=bool), rivals[-1])
    except ValueError:
        return []
    label = short_name([names[j] for j in stage])
    stage_model: str | dict[str, Any] = names[stage[0]] if len(stage) == 1 else {
        "kind": "vote", "models": [names[j] for j in stage], **extract_spec}
    parts: dict[str, Any] = {}
    if weighted is not None:
        label += f"-w{STAGE_REGIONS}"
        stage_model = {"kind": "vote", "models": [names[j] for j in stage], "by": "weight",
                       "weights_by": {"path": weighted.path}, **extract_spec}
        parts[weighted.path] = weighted.weights
    strong_t = rp.single(t, strong)
    runs = []
    for (gain, weight), p in scores.items():
        if (gain, weight) not in final:
            continue
        tag = ("" if not gain else f"-g{gain:g}") + ("" if not weight else f"-p{weight:g}")
        path = f"accept/{label}{tag}"
        # The shipped parts score on another scale than the folds' (fitted on more items,
        # and these items were theirs): a threshold ships as the one at which they accept
        # the share of the training items the folds' threshold accepted.
        shipped = np.sort(final[gain, weight].score(x, feats, tokens))
        seen: set[float] = set()
        for thr in sorted({round(float(q), 4) for q in np.quantile(p, np.linspace(0.025, 0.975,
                                                                                   39))}):
            accept = p >= thr
            run = rp.accepted(t, stage, accept, strong_t, **vote_w)
            cut = len(shipped) - int(accept.sum())
            # Rounded down, so that the shipped check accepts the item at the cut too.
            ship = math.floor(float(shipped[min(cut, len(shipped) - 1)]) * 1e6) / 1e6
            if ship in seen:
                continue
            seen.add(ship)
            check: dict[str, Any] = {"type": "learned", "path": path, "threshold": ship,
                                     **extract_spec}
            spec = {"kind": "cascade", "stages": [{"model": stage_model, "check": check},
                                                  {"model": names[strong]}]}
            runs.append(Candidate(f"cascade-{label}{tag}-{ship:.3f}", "learned cascade",
                                  "sequential", spec, run, {path: final[gain, weight], **parts}))
    return frontier(runs)
