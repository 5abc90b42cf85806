"""Which answers agree: the answer kind (a choice letter, a number, yes/no) whose labels
tell, on a recorded table, when two models' answers are the same answer; ``chorus tune``
searches votes and agreement by it."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

from chorus.eval.outcomes import OutcomeItem
from chorus.patterns.agreement import extractor

__all__ = ["FIT", "pick_extract", "whole_answers_agree"]


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
