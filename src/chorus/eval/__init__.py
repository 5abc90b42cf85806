"""Measure systems on data: datasets, scorers, outcome tables, the bench runner, reports
and router metrics.

    items = load_dataset("qa.jsonl")
    results = run_sync(bench({"one": model}, items, make_scorer("exact")))
"""

from chorus.eval.datasets import Item, load_dataset
from chorus.eval.metrics import Curve, RouterMetrics, aiq, apgr, cpt, router_metrics
from chorus.eval.outcomes import Outcome, OutcomeItem, read_outcomes, write_outcomes
from chorus.eval.scorers import Scorer, make_scorer

__all__ = [
    "Curve",
    "Item",
    "Outcome",
    "OutcomeItem",
    "RouterMetrics",
    "Scorer",
    "aiq",
    "apgr",
    "cpt",
    "load_dataset",
    "make_scorer",
    "read_outcomes",
    "router_metrics",
    "write_outcomes",
]
