"""Fast replays of systems on an outcome table, for the search in ``tune``: what each
system would score and cost per item, decided as the patterns decide (the vote's
grouping by extracted label, ties to the earliest member; consensus on a share of the
models asked; a cascade stage accepted by its check). ``chorus tune`` measures what it
keeps with the bench runner itself; these replays only steer the search.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from chorus.eval.outcomes import OutcomeItem, matrices
from chorus.patterns.agreement import Extractor
from chorus.routing.acceptance import answer_features
from chorus.routing.answer_shape import SHAPE_FEATURES, shape_features
from chorus.routing.choice_shape import choice_features

__all__ = ["Table", "Run", "VoteOutcome", "vote", "consensus", "accepted", "route"]

Array = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


@dataclass
class Table:
    """Scores, costs, output tokens and extracted answer labels (0: none) as items x
    models arrays, the ``SHAPE_FEATURES`` of each recorded response (items x models x
    features), and ``keys``: each label's extracted answer (``keys[0]``: none)."""

    models: list[str]
    scores: Array
    costs: Array
    labels: Ints
    prompts: list[str]
    shapes: Array
    tokens: Array
    keys: list[str]

    @classmethod
    def of(cls, rows: Sequence[OutcomeItem], models: Sequence[str], extract: Extractor
           ) -> Table:
        scores, costs = matrices(rows, models)
        ids: dict[str, int] = {}
        labels = np.zeros((len(rows), len(models)), dtype=np.int64)
        shapes = np.zeros((len(rows), len(models), len(SHAPE_FEATURES)))
        tokens = np.zeros((len(rows), len(models)))
        for i, row in enumerate(rows):
            for j, m in enumerate(models):
                out = row.outcomes.get(m)
                text = out.response if out is not None else None
                tokens[i, j] = (out.output_tokens or 0) if out is not None else 0
                shapes[i, j] = shape_features(text)
                key = extract(text) if text else None
                if key:
                    labels[i, j] = ids.setdefault(key, len(ids) + 1)
        return cls(list(models), np.nan_to_num(scores, nan=0.0),
                   np.nan_to_num(costs, nan=0.0), labels, [r.prompt for r in rows], shapes,
                   tokens, ["", *ids])

    def take(self, idx: Ints) -> Table:
        return Table(self.models, self.scores[idx], self.costs[idx], self.labels[idx],
                     [self.prompts[i] for i in idx], self.shapes[idx], self.tokens[idx],
                     self.keys)

    def stage_tokens(self, members: Sequence[int]) -> Array:
        """The output tokens a stage of ``members`` reports per item (a vote sums its
        members', as a composite's usage does live)."""
        return np.asarray(self.tokens[:, list(members)].sum(axis=1))

    def __len__(self) -> int:
        return int(self.scores.shape[0])


@dataclass
class Run:
    """A system's score and cost on each item."""

    score: Array
    cost: Array

    @property
    def quality(self) -> float:
        return float(self.score.mean()) if self.score.size else 0.0

    @property
    def total(self) -> float:
        return float(self.cost.sum())

    def take(self, idx: Ints) -> Run:
        return Run(self.score[idx], self.cost[idx])


def single(t: Table, j: int) -> Run:
    return Run(t.scores[:, j].copy(), t.costs[:, j].copy())


@dataclass
class VoteOutcome:
    """Per item: the member whose answer wins (-1: nobody answered), how many members
    gave that answer, and how many distinct answers there were."""

    winner: Ints
    count: Ints
    distinct: Ints


def vote(t: Table, members: Sequence[int], weights: npt.ArrayLike | None = None,
         bonus: npt.ArrayLike | None = None) -> VoteOutcome:
    """The (weighted) vote of ``members``: per item the label with the largest total
    weight wins, ties to the earliest member, as ``Vote(tie_break="order")``. ``weights``:
    one per member, or one row per item (weights that depend on the question);
    ``bonus``: items x members, what each member's answer adds to its group's total
    (``RegionWeights.bonus_rows``)."""
    lab = t.labels[:, list(members)]
    w = np.asarray(weights if weights is not None else [1.0] * len(members), dtype=np.float64)
    per_item = w[:, None, :] if w.ndim == 2 else w[None, None, :]
    same = (lab[:, :, None] == lab[:, None, :]) & (lab[:, :, None] > 0)
    total = (same * per_item).sum(axis=2)
    if bonus is not None:
        total = total + np.asarray(bonus, dtype=np.float64)
    count = same.sum(axis=2)
    pos = np.argmax(total, axis=1)  # the first member of the heaviest group
    rows = np.arange(len(t))
    answered = lab[rows, pos] > 0
    # Distinct answers per item: in each sorted row, the labels above 0 that differ from
    # the one before them.
    srt = np.sort(lab, axis=1)
    new = np.concatenate([srt[:, :1] > 0, (srt[:, 1:] != srt[:, :-1]) & (srt[:, 1:] > 0)],
                         axis=1)
    distinct = new.sum(axis=1).astype(np.int64)
    winner = np.where(answered, np.asarray(members)[pos], -1)
    return VoteOutcome(np.asarray(winner, dtype=np.int64),
                       np.where(answered, count[rows, pos], 0).astype(np.int64), distinct)


def _pick(t: Table, winner: Ints) -> Array:
    rows = np.arange(len(t))
    return np.where(winner >= 0, t.scores[rows, np.maximum(winner, 0)], 0.0)


def voted(t: Table, members: Sequence[int], weights: npt.ArrayLike | None = None,
          bonus: npt.ArrayLike | None = None) -> Run:
    """A vote as a system: the winner's recorded score (0 when nobody answered)."""
    v = vote(t, members, weights, bonus)
    return Run(_pick(t, v.winner), t.costs[:, list(members)].sum(axis=1))


def consensus(t: Table, members: Sequence[int], threshold: float, escalate: Run) -> Run:
    """Accept the largest group when it holds ``threshold`` of the models, else escalate."""
    v = vote(t, members)
    agree = (v.winner >= 0) & (v.count / len(members) >= threshold - 1e-9)
    cost = t.costs[:, list(members)].sum(axis=1) + np.where(agree, 0.0, escalate.cost)
    return Run(np.where(agree, _pick(t, v.winner), escalate.score), cost)


def stage_answers(t: Table, members: Sequence[int]) -> Ints:
    """The label of a cascade stage's answer per item (0: none): a single model's, or
    its members' vote's."""
    if len(members) == 1:
        return np.asarray(t.labels[:, members[0]])
    return _won(t, vote(t, members))


def _won(t: Table, v: VoteOutcome) -> Ints:
    """The label a vote settled on per item (0: nobody answered)."""
    return np.where(v.winner >= 0, t.labels[np.arange(len(t)), np.maximum(v.winner, 0)], 0)


def stage_features(t: Table, members: Sequence[int], *, by_member: bool = False,
                   answers: Sequence[str] = (), choices: bool = False,
                   weights: npt.ArrayLike | None = None, bonus: npt.ArrayLike | None = None
                   ) -> tuple[Array, Ints]:
    """The acceptance features of a cascade stage's answer (a vote when it has several
    members, as ``LearnedCheck`` reads them live; a single model's then the
    ``SHAPE_FEATURES`` of its answer's text, which a vote with an extractor replaces with
    the bare label) and the member whose answer it is; ``by_member``: then one 0/1 per
    member, it gave the winning answer; then one 0/1 per name in ``answers``: the
    stage's answer is it; then, with ``choices``, the ``CHOICE_FEATURES`` of that answer
    among the options its prompt lists. ``weights``, ``bonus``: the vote's, as ``vote``
    takes them."""
    if len(members) == 1 and not by_member:
        j = members[0]
        answered = t.labels[:, j] > 0
        one = np.asarray([answer_features(int(a), 1, bool(a), 1) for a in answered],
                         dtype=np.float64).reshape(len(t), -1)
        feats = np.hstack([one, t.shapes[:, j]])
        who = np.full(len(t), j, dtype=np.int64)
        won = np.asarray(t.labels[:, j])
    else:
        v = vote(t, members, weights, bonus)
        feats = np.asarray([answer_features(int(c), len(members), bool(w >= 0), int(d))
                            for c, w, d in zip(v.count, v.winner, v.distinct, strict=True)],
                           dtype=np.float64).reshape(len(t), -1)
        won = _won(t, v)
        if by_member:
            agrees = (t.labels[:, list(members)] == won[:, None]) & (won[:, None] > 0)
            feats = np.hstack([feats, agrees.astype(np.float64)])
        who = v.winner
    if answers:
        said = np.asarray(t.keys, dtype=object)[won]
        feats = np.hstack([feats, np.stack([said == a for a in answers], axis=1)
                           .astype(np.float64)])
    if choices:
        feats = np.hstack([feats, np.asarray(
            [choice_features(p, t.keys[w] if w else None) for p, w in zip(t.prompts, won,
                                                                           strict=True)],
            dtype=np.float64).reshape(len(t), -1)])
    return feats, who


def accepted(t: Table, members: Sequence[int], accept: npt.NDArray[np.bool_],
             escalate: Run, *, weights: npt.ArrayLike | None = None,
             bonus: npt.ArrayLike | None = None) -> Run:
    """A two-stage cascade: the stage's answer where ``accept``, else ``escalate``. A
    vote stage where nobody answered fails, and fails over to the escalation. ``weights``,
    ``bonus``: the stage vote's, as ``vote`` takes them."""
    # Only who answered matters here, not the features: this runs once per threshold.
    who = (np.full(len(t), members[0], dtype=np.int64) if len(members) == 1
           else vote(t, members, weights, bonus).winner)
    ok = accept & (who >= 0)
    stage_score = _pick(t, who) if len(members) > 1 else t.scores[:, members[0]]
    # A stage that failed still paid for its calls (the cascade counts them).
    cost = t.costs[:, list(members)].sum(axis=1) + np.where(ok, 0.0, escalate.cost)
    return Run(np.where(ok, stage_score, escalate.score), cost)


def route(choice: Ints, targets: Sequence[Run]) -> Run:
    """A router: item i goes to ``targets[choice[i]]``."""
    score = np.stack([r.score for r in targets], axis=1)
    cost = np.stack([r.cost for r in targets], axis=1)
    rows = np.arange(len(choice))
    return Run(score[rows, choice], cost[rows, choice])
