"""``chorus tune``: search the systems that can be built from a table's models, on
recorded outcomes, and keep the ones no other beats on both quality and cost.

Every candidate is judged on every training item. What has nothing fitted (a single
model, a log-odds vote, a consensus) is replayed on them; what is fitted (learned checks,
learned vote weights, routers) is cross-fitted: each of three folds is scored by parts
fitted on the other two, so its settings (thresholds, knob values, which candidates stay)
are chosen on every training item, and the parts it ships are refitted on all of them.
(Judged on a held-out slice of 30 %, the best points of a router's knob sweep on 600
questions were kept as if they were what the router does, and pushed better systems off
the frontier.)
The families searched:

- singles: every model;
- weighted votes of the best models better than chance (log-odds weights over the
  table's K answers, ``log((K - 1) p / (1 - p))``, and
  weights learned from which members gave the right answers, overall or per region of the
  prompt space (``routing.vote_weights``), cross-fitted);
- agreement cascades (``consensus``): two or three cheap models answer, their answer is
  kept when enough of them agree, else the strongest model answers;
- learned-acceptance cascades (the FrugalGPT idea): a cheap stage (one model, or a vote
  of cheap models) answers, a logistic model reads the prompt's embedding and the answer
  (how many of the stage agree, and which of them) and accepts it or escalates, alone or
  weighed against a second model's P(the strongest model is right | prompt), so that
  escalations go where they gain most, and against the escalation's predicted cost (from
  the prompt and how long the stage's answer ran), so that they go where they gain most
  per dollar; one threshold per budget. A stage of several models is searched both as
  a plain vote and as a vote whose weights depend on the question's region of the prompt
  space and on where each answer stands among the options (``_tune_cascades``);
- learned routers (kNN on the prompt's embedding) over the efficient models, over the
  five best ones, and routers whose routes include the best cascades.

The systems on that Pareto frontier are written as a config whose
``replay`` models answer from the test table, then measured on it with the bench runner.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from chorus.eval import _replay as rp
from chorus.eval._candidates import FOLDS, Candidate, frontier, out_of_fold, short_name
from chorus.eval._tune_cascades import (
    acceptance_cascades,
    cross_fit_region_weights,
    fit_rival,
    weighted_stage,
)
from chorus.eval.answer_kind import (
    answer_classes,
    lists_options,
    pick_extract,
    whole_answers_agree,
)
from chorus.eval.ensembles import log_odds
from chorus.eval.outcomes import OutcomeItem
from chorus.eval.routers import prompt_chars
from chorus.patterns.agreement import extractor
from chorus.routing.learned import choose, fit, sweep
from chorus.routing.vote_weights import answer_rows, coefficients

__all__ = ["Candidate", "Search", "search", "pick_extract", "frontier"]

Array = npt.NDArray[np.float64]


@dataclass
class Search:
    candidates: list[Candidate]
    front: list[Candidate]
    strongest: str
    items: int


#: The fewest training items tune searches on (each of its three folds holds a third).
MIN_ITEMS = 50


def require_searchable(items: int, models: Sequence[str]) -> None:
    """Raise ValueError unless a table of ``items`` rows over ``models`` can be searched:
    two models at least, and ``MIN_ITEMS`` items."""
    if len(models) < 2:
        raise ValueError("tune needs outcomes of at least two models")
    if items < MIN_ITEMS:
        raise ValueError(f"tune needs at least {MIN_ITEMS} training items, got {items}")


def search(rows: Sequence[OutcomeItem], x: Array, models: Sequence[str], *,
           extract: str | None, seed: int = 0,
           on_step: Callable[[str], None] | None = None) -> Search:
    """Search systems on the training rows (``x``: their prompt embeddings)."""
    require_searchable(len(rows), models)
    n = len(rows)
    ex = extractor(extract) if extract else extractor(None)  # type: ignore[arg-type]
    # Agreement between cheap answers (consensus, stages of several models) is searched
    # when the answers have labels, or when whole answers repeat as labels do.
    agree = extract is not None or whole_answers_agree(rows, models)
    table = rp.Table.of(rows, models, ex)
    step = on_step or (lambda s: None)
    acc = table.scores.mean(axis=0)
    cost = table.costs.mean(axis=0)
    names = list(models)
    strong = int(np.argmax(acc))
    extract_spec = {"extract": extract} if extract else {}
    cands: list[Candidate] = []

    step("singles")
    for j, m in enumerate(names):
        cands.append(Candidate(f"single-{m}", "single", "single", m, rp.single(table, j)))

    # The efficient models: none cheaper and at least as good.
    efficient = [j for j in range(len(names))
                 if not any(cost[k] <= cost[j] and acc[k] > acc[j] for k in range(len(names)))]
    ranked = sorted(range(len(names)), key=lambda j: -acc[j])

    step("weighted votes")
    # A wrong answer is one of the K - 1 other answers, so a member right with chance p
    # weighs log((K - 1) p / (1 - p)) (K = 2: the plain log-odds), and a member no better
    # than chance, 1 / K, has no say: on ten-option questions a model right 40 % of the
    # time still tells the answer.
    classes = answer_classes(table)
    voters = [j for j in ranked if acc[j] > 1.0 / classes][:8]
    weights = {j: log_odds(float(acc[j])) + math.log(classes - 1) for j in voters}
    for size in range(3, len(voters) + 1, 2):
        members = voters[:size]
        spec: dict[str, Any] = {
            "kind": "vote", "models": [names[j] for j in members], "by": "weight",
            "weights": {names[j]: round(weights[j], 4) for j in members}, **extract_spec}
        cands.append(Candidate(f"vote-{size}", "weighted vote", "parallel", spec,
                               rp.voted(table, members, [weights[j] for j in members])))

    # The same votes with weights learned from the outcomes: which members gave an
    # answer predicts whether it is right (two models that err alike are not counted
    # twice, as independent log-odds weights count them); and weights that depend on the
    # question, one row per region of the prompt space. Cross-fitted, as the learned
    # checks below are: judged on every training item, shipped fitted on all of them.
    folds = np.random.default_rng(seed + 1).permutation(n) % FOLDS
    xall = np.asarray(x, dtype=np.float64)
    # Where the prompts list options (and answers are not numbers), checks and region
    # votes weigh where an answer stands among them.
    choices = extract != "number" and lists_options(table)
    for size in _sizes((3, 5, len(voters)), len(voters)):
        cands.extend(_learned_votes(table, folds, voters[:size], names, extract_spec))
    for size in _sizes((5, len(voters)), len(voters)):
        cands.extend(_region_votes(table, xall, folds, voters[:size], names, extract_spec,
                                   seed, choices=choices))

    step("agreement cascades")
    cheap = [j for j in ranked if j != strong and cost[j] <= 0.35 * cost[strong]][:6]
    strong_all = rp.single(table, strong)
    stages: list[tuple[int, ...]] = [(j,) for j in cheap[:3]]
    consensus_cands: list[tuple[Candidate, tuple[int, ...]]] = []
    if agree:
        for size in (2, 3):
            for group in itertools.combinations(cheap, size):
                for thr in ((1.0,) if size == 2 else (1.0, 0.66)):
                    spec = {"kind": "consensus", "models": [names[j] for j in group],
                            "threshold": thr, "escalate_to": names[strong], **extract_spec}
                    run = rp.consensus(table, group, thr, strong_all)
                    c = Candidate(f"consensus-{short_name([names[j] for j in group])}"
                                  f"{'' if thr == 1.0 else '-2of3'}", "agreement cascade",
                                  "ensemble", spec, run)
                    consensus_cands.append((c, group))
        front_c = frontier([c for c, _ in consensus_cands])
        cands.extend(front_c)
        stages += [m for c, m in consensus_cands if c in front_c][:3]

    step("learned-acceptance cascades")
    # Stages of two or three cheap models whose agreement is the signal: the models
    # costing at most 15 % of the strongest, best first, the stage at most 30 % of it.
    value = [j for j in ranked if j != strong and cost[j] <= 0.15 * cost[strong]][:5]
    for size in (2, 3) if agree else ():
        for group in itertools.combinations(value, size):
            if cost[list(group)].sum() <= 0.3 * cost[strong] and group not in stages:
                stages.append(group)
    # Learned checks are cross-fitted: each fold's scores come from parts fitted on the
    # other folds, so every training item is held out once and each setting is judged on
    # all of them (the held-out slice alone left the choice to chance); the parts it ships
    # are then fitted on every training item.
    # P(the strongest model is right | prompt): a check may weigh it against the stage's
    # own chance, escalating where escalating gains most.
    rivals = [fit_rival(table, xall, folds != k, strong) for k in range(FOLDS)]
    rivals.append(fit_rival(table, xall, np.ones(n, dtype=bool), strong))
    cascades: list[Candidate] = []
    for stage in stages:
        # A stage of several models also as a vote whose weights depend on the question
        # (and on where each answer stands among the options), when that vote is better
        # out of fold than the plain one: where the cheap models disagree, which answer
        # the stage keeps matters as much as whether it keeps one.
        weighted = weighted_stage(table, xall, folds, stage, names, seed=seed,
                                  choices=choices) if len(stage) > 1 else None
        for ws in (None, weighted) if weighted is not None else (None,):
            for c in acceptance_cascades(table, xall, folds, stage, names, strong, rivals,
                                         extract_spec, choices=choices, weighted=ws):
                cands.append(c)
                cascades.append(c)

    step("learned routers")
    pool = [j for j in ranked if j in efficient][:5]
    if len(pool) < 2:
        pool = ranked[:2]
    targets: list[tuple[str, str | dict[str, Any], rp.Run]] = [
        (names[j], names[j], rp.single(table, j)) for j in pool]
    chars = prompt_chars(rows)
    cands.extend(_routers("router", targets, xall, folds, seed, chars))
    # And over the five best models whatever their price: a model the efficient set
    # leaves out can still be the right call for some prompts.
    top = ranked[:5]
    if sorted(top) != sorted(pool):
        cands.extend(_routers("router-top5", [(names[j], names[j], rp.single(table, j))
                                              for j in top], xall, folds, seed, chars))
    # Routes to cascades too: the two best-value cascades found above, on every training
    # item (a learned cascade's run is already out of fold there; a consensus is
    # replayed), so the router can learn where they pay.
    best_casc = sorted(frontier(cascades + [c for c, _ in consensus_cands]),
                       key=lambda c: -c.quality)[:2]
    extra = [(c.name, c.spec, c.held_out) for c in best_casc]
    if extra:
        routed = _routers("router-cascades", targets + extra, xall, folds, seed, chars)
        for r in routed:
            for c in best_casc:
                r.parts.update(c.parts)
        cands.extend(routed)

    return Search(cands, frontier(cands), names[strong], n)


def learned_weights(t: rp.Table, members: Sequence[int]) -> dict[int, float]:
    """Each member's weight in a vote, learned from the outcomes: a logistic model of
    whether an answer is right from which members gave it; the members it weighs at 0 or
    less are left out (their answers add nothing the others' do not)."""
    who, _, right = answer_rows(t.labels[:, list(members)], t.scores[:, list(members)] > 0.5)
    try:
        w, _ = coefficients(who, right, [str(j) for j in members])
    except ValueError:
        return {}
    return {j: float(wj) for j, wj in zip(members, w, strict=True) if wj > 1e-3}


#: How many regions of the prompt space a region-weighted vote may cut it into.
REGIONS = (4, 8)


def _sizes(wanted: Sequence[int], voters: int) -> list[int]:
    """The vote sizes of ``wanted`` that ``voters`` can fill, at least three."""
    return [s for s in sorted(set(wanted)) if 3 <= s <= voters]


def _learned_votes(t: rp.Table, folds: npt.NDArray[np.int64], members: list[int],
                   names: list[str], extract_spec: dict[str, Any]) -> list[Candidate]:
    """A vote of ``members`` with weights learned from the outcomes (those weighed at 0
    left out), cross-fitted, shipped fitted on all items."""
    learned = learned_weights(t, members)
    if len(learned) < 2:
        return []

    def score_fold(rest: npt.NDArray[np.int64], fold: npt.NDArray[np.int64]) -> Array:
        w = learned_weights(t.take(rest), members)
        if not w:
            return np.zeros(len(fold))
        return rp.voted(t.take(fold), list(w), list(w.values())).score

    kept = list(learned)
    spec = {"kind": "vote", "models": [names[j] for j in kept], "by": "weight",
            "weights": {names[j]: round(learned[j], 4) for j in kept}, **extract_spec}
    run = rp.Run(out_of_fold(folds, score_fold), t.costs[:, kept].sum(axis=1))
    return [Candidate(f"vote-learned-{len(members)}", "weighted vote", "parallel", spec, run)]


def _region_votes(t: rp.Table, x: Array, folds: npt.NDArray[np.int64], members: list[int],
                  names: list[str], extract_spec: dict[str, Any], seed: int, *,
                  choices: bool = False) -> list[Candidate]:
    """Votes of ``members`` whose weights depend on the prompt's region, one per number of
    regions, cross-fitted (judged on every training item), shipped fitted on all;
    ``choices``: where each answer stands among the prompt's options counts too."""
    member_names = [names[j] for j in members]
    out = []
    for regions in REGIONS:
        try:
            rows, bonus, final = cross_fit_region_weights(t, x, folds, members, names,
                                                          regions=regions, seed=seed,
                                                          choices=choices)
        except ValueError:
            continue
        score = rp.voted(t, members, rows, bonus).score
        path = f"votes/regions-{len(members)}-k{regions}"
        spec = {"kind": "vote", "models": member_names, "by": "weight",
                "weights_by": {"path": path}, **extract_spec}
        out.append(Candidate(f"vote-regions-{len(members)}-k{regions}", "weighted vote",
                             "parallel", spec,
                             rp.Run(score, t.costs[:, members].sum(axis=1)), {path: final}))
    return out


def _routers(label: str, targets: Sequence[tuple[str, str | dict[str, Any], rp.Run]],
             x: Array, folds: npt.NDArray[np.int64], seed: int, chars: Array
             ) -> list[Candidate]:
    """A kNN router over ``targets`` (each with its run on every training item),
    cross-fitted as the learned checks are: each fold is routed by a router fitted on
    the other folds (each picks its k, and whether to price calls by prompt length:
    ``chars``, the prompts' lengths, on a share of its own items), so that every knob
    value is judged on every training item instead of the best points of one held-out
    slice's curve being kept; the router it ships is fitted on all items. One candidate
    per knob value on that curve's frontier, a few of them."""
    scores = np.stack([t[2].score for t in targets], axis=1)
    costs = np.stack([t[2].cost for t in targets], axis=1)
    names = [t[0] for t in targets]
    pred, rel = np.zeros(scores.shape), np.zeros(scores.shape)
    try:
        for k in range(FOLDS):
            rest, fold = folds != k, folds == k
            part = fit(x[rest], scores[rest], costs[rest], names, kind="knn", seed=seed,
                       chars=chars[rest])
            pred[fold] = part.predict(x[fold])
            rel[fold] = part.relative_costs(chars[fold])
        router = fit(x, scores, costs, names, kind="knn", seed=seed, chars=chars)
    except ValueError:
        return []
    runs = [t[2] for t in targets]
    path = f"routers/{label}"
    out = []
    for lam, _, _ in sweep(pred, rel):
        run = rp.route(choose(pred, rel, lam), runs)
        spec = {"kind": "router",
                "classifier": {"type": "learned", "path": path,
                               "willingness_to_pay": float(lam)},
                "routes": {t[0]: t[1] for t in targets}, "default": targets[0][0]}
        out.append(Candidate(f"{label}-{lam:.4g}", "learned router", "sequential", spec, run,
                             {path: router}))
    front = frontier(out)
    if len(front) > 6:  # a few knob settings spread over the cost range
        keep = np.unique(np.linspace(0, len(front) - 1, 6).round().astype(int))
        front = [front[i] for i in keep]
    return front
