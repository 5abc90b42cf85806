"""Prompts (the cache's strict reading) compare how many negations and date mentions they
carry, not only whether any: the misses a 1,796-pair near-miss sample found."""

from __future__ import annotations

from chorus.meaning import answers_agree, conflict


def test_a_second_negation_in_a_prompt_is_a_difference() -> None:
    a = "The floods have left many families without food. How many meals are left?"
    b = "The floods have not left many families without food. How many meals are left?"
    assert conflict(a, b) == "negation"
    assert conflict(b, a) == "negation"
    assert conflict("Don't cancel my order", "Do not cancel my order") is None
    assert conflict("I cannot log in", "I can't log in") is None


def test_dates_swapped_across_a_prompt_are_a_difference() -> None:
    a = ("On Monday, she sold all the apples picked. On Tuesday, she picked 12 apples. "
         "She got $56 from the apples picked on Monday. How many did she pick?")
    b = ("On Tuesday, she sold all the apples picked. On Monday, she picked 12 apples. "
         "She got $56 from the apples picked on Tuesday. How many did she pick?")
    assert conflict(a, b) is not None
    assert conflict(b, a) is not None
    assert conflict("remind me on monday at 9", "on monday at 9, remind me") is None


def test_answers_keep_the_lenient_reading() -> None:
    # Two negation cues against one is still one answer ("No, it is not" / "It is not").
    assert answers_agree("No, it is not raining.", "It is not raining.",
                         "Is it raining?").same is not False


def test_function_words_in_another_order_are_a_difference_unless_a_phrase_moved() -> None:
    assert conflict("remove laundry from my to do list",
                    "remove laundry from do to my list") == "word order"
    assert conflict("what is the future value if the rate is 8% for 3 years",
                    "for 3 years, what is the future value if the rate is 8%") is None
