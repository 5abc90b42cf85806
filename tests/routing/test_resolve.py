from __future__ import annotations

import importlib

import pytest

from chorus.routing import Decision, resolve

ROUTES = {"math": 1, "general": 2}


def test_known_label_takes_its_route() -> None:
    assert resolve(Decision("math", "rule 1"), ROUTES, "general") == ("math", "rule 1")


def test_abstention_takes_the_default() -> None:
    d = Decision(None, "similarity 0.41 < threshold 0.5")
    assert resolve(d, ROUTES, "general") == (
        "general", "similarity 0.41 < threshold 0.5 → general")


def test_unknown_label_takes_the_default() -> None:
    route, why = resolve(Decision("poetry", "m answered 'poetry'"), ROUTES, "general")
    assert route == "general"
    assert "no route 'poetry'" in why


def test_low_confidence_takes_the_default() -> None:
    d = Decision("math", "fn returned 'math' (0.30)", confidence=0.3)
    route, why = resolve(d, ROUTES, "general", min_confidence=0.5)
    assert route == "general" and "confidence 0.30 < 0.5" in why
    assert resolve(d, ROUTES, "general", min_confidence=0.2)[0] == "math"
    # No confidence reported: the threshold cannot apply.
    assert resolve(Decision("math", "x"), ROUTES, "general", min_confidence=0.9)[0] == "math"


def test_decision_attributes_round_scores() -> None:
    d = Decision("a", "r", 0.5, {"a": 0.123456, "b": 0.1})
    assert d.attributes() == {"label": "a", "confidence": 0.5,
                              "scores": {"a": 0.1235, "b": 0.1}}


@pytest.mark.parametrize("module", [
    "chorus.routing", "chorus.routing.keyword", "chorus.routing.llm", "chorus.routing.embedding",
    "chorus.routing.function", "chorus.routing.selection", "chorus.patterns.pipeline",
    "chorus.patterns.router",
])
def test_all_names_exist(module: str) -> None:
    mod = importlib.import_module(module)
    assert [n for n in mod.__all__ if not hasattr(mod, n)] == []
