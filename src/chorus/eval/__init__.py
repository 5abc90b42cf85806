"""Measure systems on data: datasets, scorers, outcome tables, the bench runner, reports
and router metrics.

    items = load_dataset("qa.jsonl")
    results = run_sync(bench({"one": model}, items, make_scorer("exact")))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chorus.eval.datasets import Item, load_dataset
from chorus.eval.metrics import Curve, RouterMetrics, aiq, apgr, cpt, router_metrics
from chorus.eval.outcomes import Outcome, OutcomeItem, read_outcomes, write_outcomes
from chorus.eval.scorers import Scorer, make_scorer

if TYPE_CHECKING:
    from chorus.core.registry import Registry

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
    "register",
    "router_metrics",
    "write_outcomes",
]


def register(registry: Registry) -> None:
    """Register the evaluation kinds (the ``chorus.plugins`` entry point): ``replay``."""
    from chorus.eval import replay

    registry.provider("replay", replay.ReplayConfig, replay.build,
                      "answers as a recorded model did, from an outcome table")
