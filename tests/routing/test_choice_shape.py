"""Where a multiple-choice answer stands among the prompt's options."""

from __future__ import annotations

import pytest

from chorus.routing.choice_shape import CHOICE_FEATURES, choice_features, options

QUESTION = """Which gas is the most common in air?

A. Oxygen
B. Nitrogen, at about 78 % of dry air by volume
C. Argon
D. CO2"""


@pytest.mark.parametrize(("prompt", "want"), [
    (QUESTION, {"A": "Oxygen", "B": "Nitrogen, at about 78 % of dry air by volume",
                "C": "Argon", "D": "CO2"}),
    ("Pick one:\n(A) red\n(B) blue\n  C) green\nD: grey\n", {"A": "red", "B": "blue",
                                                            "C": "green", "D": "grey"}),
    # A list quoted earlier in the prompt, then the question's own: the longer run.
    ("Earlier:\nA. one\nB. two\nNow:\nA. red\nB. blue\nC. green", {"A": "red", "B": "blue",
                                                                   "C": "green"}),
    ("A. only one option", {}),
    ("A. first\nC. a gap: C without B", {}),
    ("No options here. B. is not a list.", {}),
])
def test_options_reads_the_lettered_lines(prompt: str, want: dict[str, str]) -> None:
    assert options(prompt) == want


def test_features_place_the_chosen_option_among_the_others() -> None:
    f = dict(zip(CHOICE_FEATURES, choice_features(QUESTION, "B"), strict=True))
    assert f["choice:len_rank"] == 1.0 and f["choice:longest"] == 1.0
    assert f["choice:shortest"] == 0.0 and f["choice:len_z"] > 1.0
    assert f["choice:numeric"] == 0.0 and f["choice:position"] == pytest.approx(1 / 3)
    g = dict(zip(CHOICE_FEATURES, choice_features(QUESTION, "d"), strict=True))  # any case
    assert g["choice:shortest"] == 1.0 and g["choice:len_rank"] == 0.0
    assert g["choice:position"] == 1.0


def test_numeric_options_rank_by_value_with_their_units() -> None:
    prompt = "Pressure?\nA. 450 mm Hg\nB. $1,200\nC. -3 mm Hg\nD. 25%"
    f = dict(zip(CHOICE_FEATURES, choice_features(prompt, "A"), strict=True))
    assert f["choice:numeric"] == 1.0
    assert f["choice:num_rank"] == pytest.approx(2 / 3) and f["choice:num_extreme"] == 0.0
    f = dict(zip(CHOICE_FEATURES, choice_features(prompt, "C"), strict=True))
    assert f["choice:num_rank"] == 0.0 and f["choice:num_extreme"] == 1.0
    # One option in words: not a numeric question.
    mixed = prompt + "\nE. none of these"
    assert dict(zip(CHOICE_FEATURES, choice_features(mixed, "A"),
                    strict=True))["choice:numeric"] == 0.0


@pytest.mark.parametrize(("prompt", "label"), [
    (QUESTION, "E"), (QUESTION, None), (QUESTION, ""), ("What is 2 + 2?", "A")])
def test_no_option_no_features(prompt: str, label: str | None) -> None:
    assert choice_features(prompt, label) == [0.0] * len(CHOICE_FEATURES)
