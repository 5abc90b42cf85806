"""Which answers agree: the answer kind (a choice letter, a number, yes/no) whose labels
tell, on a recorded table, when two models' answers are the same answer; ``chorus tune``
searches votes and agreement by it. Also how many answers a question may have (a vote's
weights assume it) and which answers are common enough for a learned check to weigh each
on its own, and whether the prompts list options for a check to place an answer among."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np

from chorus.eval import _replay as rp
from chorus.eval.outcomes import OutcomeItem
from chorus.patterns.agreement import extractor
from chorus.routing.choice_shape import options

__all__ = ["FIT", "MAX_CLASSES", "answer_classes", "common_answers", "lists_options",
           "pick_extract", "whole_answers_agree"]


def _fitness(rows: Sequence[OutcomeItem], models: Sequence[str],
             ex: Callable[[str], str | None]) -> float:
    """How well ``ex``'s labels tell agreement: the share of responses it finds a label in,
    times how much more often two models were both right or both wrong (score above 0.5
    or not: graded scores are rarely equal) when their labels agree than when they
    differ (0 when no pair agrees or none differs)."""
    found = total = 0
    same = {True: [0, 0], False: [0, 0]}  # labels equal -> [pairs, same correctness]
    for r in rows[:400]:
        keys = []
        for m in models[:6]:
            o = r.outcomes.get(m)
            if o is None or o.response is None:
                continue
            total += 1
            k = ex(o.response)
            if k:
                found += 1
                keys.append((k, (o.score or 0.0) > 0.5))
        for (k1, s1), (k2, s2) in itertools.combinations(keys, 2):
            tally = same[k1 == k2]
            tally[0] += 1
            tally[1] += int(s1 == s2)
    if not same[True][0] or not same[False][0]:
        return 0.0
    lift = same[True][1] / same[True][0] - same[False][1] / same[False][0]
    return found / max(total, 1) * lift


#: The least ``_fitness`` at which agreement between answers is worth searching.
FIT = 0.25


def pick_extract(rows: Sequence[OutcomeItem], models: Sequence[str]) -> str | None:
    """The answer label that fits the table: the kind (choice, number, yes/no) whose labels
    tell agreement best (``_fitness``), if that reaches ``FIT``, else None (whole answers
    are compared)."""
    best, best_fit = None, FIT
    for kind in ("choice", "number", "yes_no"):
        fitness = _fitness(rows, models, extractor(kind))  # type: ignore[arg-type]
        if fitness > best_fit:
            best, best_fit = kind, fitness
    return best


def whole_answers_agree(rows: Sequence[OutcomeItem], models: Sequence[str]) -> bool:
    """Whether whole answers, normalised, tell agreement (a table of short labels such as
    "positive" / "negative"); free text that never repeats does not."""
    return _fitness(rows, models, extractor(None)) >= FIT


#: The most answer classes ``answer_classes`` counts. The weights assume a wrong answer is
#: any of the K - 1 others alike; real mistakes cluster (two models that misread a sum
#: often write the same wrong number), so beyond ten options agreement among the weaker
#: models would count for more than it shows.
MAX_CLASSES = 10


def answer_classes(t: rp.Table) -> int:
    """How many answers a question may have: the distinct answer labels in the table, at
    least 2 and at most ``MAX_CLASSES`` (choice letters A-J: 10; yes/no: 2; numbers:
    10)."""
    return int(min(max(len(np.unique(t.labels[t.labels > 0])), 2), MAX_CLASSES))


#: An answer the stage gives on at least this share of the training items (and at least
#: ``ANSWER_ITEMS`` of them) is a feature of its learned check.
ANSWER_SHARE, ANSWER_ITEMS = 0.02, 20


def common_answers(t: rp.Table, stage: Sequence[int]) -> list[str]:
    """The answers a stage gives often enough to weigh each on its own (labels such as
    choice letters or yes/no; numbers are left out by the caller), commonest first, at
    most ``MAX_CLASSES``; none unless two qualify."""
    said = rp.stage_answers(t, stage)
    ids, counts = np.unique(said[said > 0], return_counts=True)
    need = max(ANSWER_ITEMS, ANSWER_SHARE * len(t))
    common = sorted(((int(c), t.keys[int(i)]) for i, c in zip(ids, counts, strict=True)
                     if c >= need), key=lambda ck: -ck[0])
    return [k for _, k in common[:MAX_CLASSES]] if len(common) >= 2 else []


#: The share of prompts that must list lettered options for a learned check to read where
#: the answer stands among them (``routing.choice_shape``).
OPTIONS_SHARE = 0.2


def lists_options(t: rp.Table) -> bool:
    """Whether at least ``OPTIONS_SHARE`` of the table's prompts list options A, B, ..."""
    listed = sum(1 for p in t.prompts if options(p))
    return listed >= OPTIONS_SHARE * max(len(t), 1)
