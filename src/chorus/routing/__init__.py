"""Routing: classifiers that pick a label for a request, and strategies that pick
which of a route's candidate models to call. The ``Router`` pattern uses both.

Classifiers: ``LLMClassifier`` (a model picks a label), ``EmbeddingClassifier``
(example utterances, centroid or k nearest), ``KeywordClassifier`` (ordered keyword and
regex rules), ``FunctionClassifier`` (a Python callable), ``IntentClassifier`` (a head
trained on example utterances, ``chorus router fit --intents``). Selection: ``select``
by capability tags, price or measured latency (``LatencyStats``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chorus.routing._base import Classifier, Decision, resolve
from chorus.routing.embedding import EmbeddingClassifier
from chorus.routing.function import FunctionClassifier
from chorus.routing.intent import IntentClassifier, IntentHead
from chorus.routing.keyword import KeywordClassifier, Rule
from chorus.routing.llm import LLMClassifier, find_label
from chorus.routing.selection import (
    LatencyStats,
    LatencyStore,
    Strategy,
    capabilities_of,
    price_of,
    select,
)

if TYPE_CHECKING:
    from chorus.core.registry import Registry

__all__ = [
    "Classifier",
    "Decision",
    "EmbeddingClassifier",
    "FunctionClassifier",
    "IntentClassifier",
    "IntentHead",
    "KeywordClassifier",
    "LLMClassifier",
    "LatencyStats",
    "LatencyStore",
    "Rule",
    "Strategy",
    "capabilities_of",
    "find_label",
    "price_of",
    "register",
    "resolve",
    "select",
]


def register(registry: Registry) -> None:
    """Register the built-in router classifiers (the ``chorus.plugins`` entry point)."""
    from chorus.routing import configs

    configs.register(registry)
