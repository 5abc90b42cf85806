from __future__ import annotations

import pytest

from chorus.core.errors import ChorusError
from chorus.core.types import Completion
from chorus.eval.datasets import Item
from chorus.eval.scorers import (
    extract_choice,
    extract_number,
    make_scorer,
    normalize,
)
from chorus.providers.scripted import ScriptedModel


def test_normalize_drops_case_punctuation_and_articles() -> None:
    assert normalize("  The  Eiffel Tower! ") == "eiffel tower"
    assert normalize("An apple, a day.") == "apple day"


@pytest.mark.parametrize(("text", "letter"), [
    ("The answer is (C).", "C"),
    ("Let's think. A is wrong, B is wrong. The answer is D", "D"),
    ("Answer: b", "B"),
    ("E. because of X", "E"),
    ("I pick (J) here", "J"),
    ("no letter at all", None),
])
def test_extract_choice(text: str, letter: str | None) -> None:
    assert extract_choice(text) == letter


@pytest.mark.parametrize(("text", "number"), [
    ("She makes 9 * 2 = 18 dollars.\n#### 18", 18.0),
    ("so 1,234 apples. The answer is 1,234.", 1234.0),
    ("it costs $5.50 in total", 5.5),
    ("x = -3", -3.0),
    ("no digits", None),
])
def test_extract_number(text: str, number: float | None) -> None:
    assert extract_number(text) == number


def _c(text: str, model: str = "m") -> Completion:
    return Completion(text, model)


async def test_text_scorers_against_reference() -> None:
    item = Item("1", "q", reference="18")
    assert (await make_scorer("numeric").score(item, _c("... #### 18")))[0] == 1.0
    assert (await make_scorer("numeric").score(item, _c("... 17")))[0] == 0.0
    assert (await make_scorer("exact").score(Item("2", "q", "Paris"), _c("paris.")))[0] == 1.0
    assert (await make_scorer("choice").score(Item("3", "q", "C"), _c("(C)")))[0] == 1.0
    assert (await make_scorer("choice").score(Item("3", "q", "C"), _c("(B)")))[0] == 0.0
    assert (await make_scorer("exact").score(Item("4", "q"), _c("x")))[0] is None


@pytest.mark.parametrize(("answer", "reference", "score"), [
    ("The capital of France is Paris.", "Paris", 1.0),
    ("paris", "Paris", 1.0),
    ("It is Parisian in style.", "Paris", 0.0),      # words, not letters
    ("The Eiffel Tower, of course!", "the eiffel tower", 1.0),
    ("New York City", "York City", 1.0),
    ("Four.", "4", 0.0),                             # no reading of numbers
    ("anything", "!!!", 0.0),                        # nothing left of the reference
])
async def test_contains_scorer_wants_the_reference_as_whole_words(
        answer: str, reference: str, score: float) -> None:
    got, calls = await make_scorer("contains").score(Item("1", "q", reference), _c(answer))
    assert (got, calls) == (score, [])
    assert (await make_scorer("contains").score(Item("2", "q"), _c(answer)))[0] is None


async def test_regex_scorer_with_and_without_group() -> None:
    item = Item("1", "q", reference="blue")
    grouped = make_scorer(r"regex:colou?r is (\w+)")
    assert (await grouped.score(item, _c("The colour is Blue")))[0] == 1.0
    assert (await grouped.score(item, _c("The color is red")))[0] == 0.0
    plain = make_scorer(r"regex:^yes\b")
    assert (await plain.score(item, _c("yes indeed")))[0] == 1.0
    assert (await plain.score(item, _c("no")))[0] == 0.0
    with pytest.raises(ChorusError, match="does not compile"):
        make_scorer("regex:(")


def length_score(item: Item, text: str) -> float:
    return float(len(text) <= 5)


def grade_score(item: Item, text: str) -> object:
    return {"7": 7, "nan": float("nan"), "word": "good", "half": "0.5"}.get(text)


async def test_a_python_scorer_must_return_a_score_in_0_1() -> None:
    scorer = make_scorer("py:tests.eval.test_scorers:grade_score")
    assert (await scorer.score(Item("1", "q"), _c("half")))[0] == 0.5
    assert (await scorer.score(Item("1", "q"), _c("none")))[0] is None
    for bad in ("7", "nan", "word"):
        with pytest.raises(ChorusError, match=r"scorer py:\S+ returned .* for item '1'; a score "
                                              r"is a number in \[0, 1\]"):
            await scorer.score(Item("1", "q"), _c(bad))


async def test_python_function_scorer() -> None:
    scorer = make_scorer("py:tests.eval.test_scorers:length_score")
    assert (await scorer.score(Item("1", "q"), _c("short")))[0] == 1.0
    assert (await scorer.score(Item("1", "q"), _c("much longer")))[0] == 0.0
    with pytest.raises(ChorusError, match="scorer"):
        make_scorer("py:tests.eval.test_scorers:nope")


async def test_judge_scorer_reports_grade_and_calls() -> None:
    judge = ScriptedModel("judge", replies=['{"score": 7}', "not json", '{"score": 3}'])
    scorer = make_scorer("judge", judge=judge, rubric="be right")
    score, calls = await scorer.score(Item("1", "2+2?", "4"), _c("4"))
    assert score == pytest.approx(0.7) and len(calls) == 1
    assert "be right" in (judge.calls[0].system or "")
    assert "reference answer: 4" in (judge.calls[0].system or "")
    score, calls = await scorer.score(Item("1", "2+2?", "4"), _c("5"))  # one repair round
    assert score == pytest.approx(0.3) and len(calls) == 2


def test_unknown_scorer_and_missing_judge() -> None:
    with pytest.raises(ChorusError, match="unknown scorer"):
        make_scorer("fuzzy")
    with pytest.raises(ChorusError, match="judge model"):
        make_scorer("judge")
