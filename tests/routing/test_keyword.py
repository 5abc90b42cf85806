from __future__ import annotations

import re

import pytest

from chorus.core.types import Request
from chorus.routing import KeywordClassifier, Rule
from chorus.routing.keyword import compile_rule, match_rules


def rules(case_sensitive: bool = False) -> KeywordClassifier:
    return KeywordClassifier(
        [
            Rule("math", keywords=["integral", "derivative of"]),
            Rule("code", regex=r"\bdef \w+\("),
            Rule("calc", keywords=["sum"], regex=r"\d+\s*[-+*/]\s*\d+"),
        ],
        case_sensitive=case_sensitive,
    )


def test_first_rule_that_matches_wins_and_reason_names_it() -> None:
    c = rules()
    d = match_rules(c.compiled, "the integral of 2 + 3")
    assert (d.label, d.reason, d.confidence) == ("math", "rule 1 matched 'integral'", 1.0)
    d = match_rules(c.compiled, "what is 2 + 3")
    assert (d.label, d.reason) == ("calc", "rule 3 matched '2 + 3'")


def test_keywords_match_whole_words_only() -> None:
    c = rules()
    assert match_rules(c.compiled, "summary of the news").label is None
    assert match_rules(c.compiled, "the sum, please").label == "calc"
    assert match_rules(c.compiled, "the Derivative  of x").label is None  # two spaces
    assert match_rules(c.compiled, "the Derivative of x").label == "math"


def test_case_sensitivity_option() -> None:
    assert match_rules(rules().compiled, "INTEGRAL").label == "math"
    assert match_rules(rules(case_sensitive=True).compiled, "INTEGRAL").label is None


def test_no_match_abstains() -> None:
    d = match_rules(rules().compiled, "hello there")
    assert d.label is None
    assert d.reason == "no rule matched (of 3)"


async def test_classify_reads_the_last_user_message() -> None:
    d = await rules().classify(Request.of("def f(x): return x", system="integral"))
    assert d.label == "code"
    assert rules().labels == ("math", "code", "calc")


def test_bad_rules_are_value_errors() -> None:
    with pytest.raises(ValueError, match="needs keywords or a regex"):
        compile_rule(Rule("x"))
    with pytest.raises(ValueError, match="invalid regex"):
        compile_rule(Rule("x", regex="(unclosed"))
    with pytest.raises(ValueError, match="at least one rule"):
        KeywordClassifier([])


def test_long_matches_are_shortened_in_the_reason() -> None:
    c = KeywordClassifier([Rule("long", regex=r"a+")])
    d = match_rules(c.compiled, "a" * 100)
    assert len(d.reason) < 70 and d.reason.endswith("…'")


def test_matching_compiles_no_regex(monkeypatch: pytest.MonkeyPatch) -> None:
    c = rules()

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a regex was compiled per call")

    with monkeypatch.context() as mp:
        for name in ("compile", "search", "match", "fullmatch", "findall", "finditer"):
            mp.setattr(re, name, refuse)
        calc = match_rules(c.compiled, "what is 2 * 3")
        none = match_rules(c.compiled, "nothing here")
    assert (calc.label, none.label) == ("calc", None)
