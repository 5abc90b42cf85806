"""The shape of an answer's text: its final answer and whether its worked arithmetic
holds, as a learned acceptance check reads them."""

from __future__ import annotations

import math

import pytest

from chorus.routing.answer_shape import (
    SHAPE_FEATURES,
    arithmetic_steps,
    final_answer,
    shape_features,
)


@pytest.mark.parametrize(("text", "checked", "wrong"), [
    ("20 feet is 20 * 12 = 240 inches, and 600 - 240 = 360. 360 / 30 = 12 days.", 3, 0),
    # Only the calculator note is checked: "= <<" is no result.
    ("Together 20 + 80 + 160 = <<20+80+160=260>>260 sheep.", 1, 0),
    ("She pays 3 x $16.50 = $49.50 in all.", 1, 0),
    ("That is 12+5*3+4*1.5=39 dollars.", 1, 1),  # 33, not 39
    ("It took 80 / 120 = 2/3 of an hour.", 1, 0),
    ("So 15% of 200: 15% * 200 = 30.", 1, 0),
    ("40 / 2 + 5 = 20, so 20 apples.", 1, 1),
    ("The total is 5 = 5 apples.", 0, 0),  # restates, computes nothing
    ("half of it: 48 * 3/4 = 36", 1, 0),
    ("no numbers at all = none", 0, 0),
    ("10 / 0 = 5", 0, 0),  # not a value: not checked
])
def test_arithmetic_steps_are_checked(text: str, checked: int, wrong: int) -> None:
    assert arithmetic_steps(text) == (checked, wrong)


def test_a_step_whose_left_operand_lies_outside_the_match_is_skipped() -> None:
    # "... 48 * 3/4 = 36": when the match starts at "* 3/4", 3/4 alone is not 36.
    assert arithmetic_steps("we need * 3/4 = 36") == (0, 0)


@pytest.mark.parametrize(("text", "final"), [
    ("work...\n#### 12", "12"),
    ("The answer is (B).", "(B)."),
    ("so \\boxed{42}", "42"),
    ("Answer: 7 cats", "7 cats"),
    ("I think it is probably 12", None),
])
def test_final_answer(text: str, final: str | None) -> None:
    assert final_answer(text) == final


def test_shape_features() -> None:
    good = shape_features("20 * 12 = 240 and 240 / 2 = 120\n#### 120")
    bad = shape_features("20 * 12 = 250 and 250 / 2 = 125\n#### 125.5")
    none = shape_features(None)
    assert len(good) == len(bad) == len(none) == len(SHAPE_FEATURES)
    assert good[1] == 0.0 and good[2] == 0.0 and good[4] == 0.0
    assert good[3] == pytest.approx(math.log1p(2))
    assert bad[2] == 1.0 and bad[4] == pytest.approx(0.5)  # 250 / 2 = 125 holds
    assert none == [0.0, 1.0, 0.0, 0.0, 0.0]
    assert shape_features("x" * 100)[0] == pytest.approx(math.log1p(100))
