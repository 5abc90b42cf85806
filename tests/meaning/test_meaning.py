"""The checks past the embedding: near misses conflict, rewordings do not."""

from __future__ import annotations

import pytest

from chorus.meaning import answer_span, answers_agree, conflict, facets

# The pairs and the kinds it names: each would be one cache entry by cosine alone.
NEAR_MISSES = [
    ("Cancel my order 1234", "Do not cancel my order 1234", "negation"),
    ("Should I take ibuprofen with alcohol?", "Should I not take ibuprofen with alcohol?",
     "negation"),
    ("Is Paris the capital of France?", "Is Paris not the capital of France?", "negation"),
    ("Write a function that sorts a list ascending",
     "Write a function that sorts a list descending", "opposite"),
    ("What is 15% of 200?", "What is 25% of 200?", "numbers"),
    ("Set an alarm for 7 am", "Set an alarm for 8 am", "numbers"),
    ("Set an alarm for 7 am", "Set an alarm for 7 pm", "numbers"),
    ("Remind me on Monday", "Remind me on Tuesday", "dates"),
    ("Translate 'good morning' to French", "Translate 'good morning' to Spanish", "names"),
    ("translate good morning to french", "translate good morning to spanish", "different"),
    ("Book a flight from Paris to Rome", "Book a flight from Rome to Paris", "role"),
    ("how do i convert dollars to euros", "how do i convert euros to dollars", "swap"),
    ("Is Paris the capital of France?", "Is France the capital of Paris?", "role"),
    ("Does the dog bite the man?", "Does the man bite the dog?", "order"),
    ("Relativistic Heavy Ion Collider energy", "Heavy Relativistic Ion Collider energy",
     "order"),
    ("Ann has 3 more apples than Bob and 2 fewer than Cy",
     "Ann has 3 fewer apples than Bob and 2 fewer than Cy", "opposite"),
    ("flights from monday to friday", "flights from friday to monday", "role"),
    ("what time is it in pacific standard time", "what time is it in pacific standard zone",
     "different"),
    ("Is France bigger than Spain?", "Is Spain bigger than France?", "swap"),
    ("The answer is yes.", "The answer is no.", "negation"),
    ("The review is positive.", "The review is negative.", "opposite"),
    ("Write a function", "Write a Python function", "names"),
]

PARAPHRASES = [
    ("What is the capital of France?", "What's the capital city of France?"),
    ("How do I reset my password?", "How can I reset my password?"),
    ("Tell me a joke about cats", "Tell me a joke about cats, please"),
    ("I want to cancel my order", "Cancel my order"),
    ("Book a flight to Rome from Paris", "Book a flight from Paris to Rome"),
    ("Set an alarm for 7 am", "set an alarm for 7:00 a.m."),
    ("Don't cancel my order", "Do not cancel my order"),
    ("What is twenty percent of 200?", "what's 20% of 200"),
    ("Sort these numbers", "Sorting these numbers"),
    ("can we speak in german", "in german, can we speak"),
    ("should i bring an umbrella if it rains", "if it rains, should i bring an umbrella"),
    ("Set an alarm for 7 am", "Set an alarm at 7 am"),
]


@pytest.mark.parametrize(("a", "b", "why"), NEAR_MISSES)
def test_near_misses_conflict(a: str, b: str, why: str) -> None:
    for x, y in ((a, b), (b, a)):
        reason = conflict(x, y)
        assert reason is not None and why in reason, (x, y, reason)


@pytest.mark.parametrize(("a", "b"), PARAPHRASES)
def test_rewordings_do_not_conflict(a: str, b: str) -> None:
    assert conflict(a, b) is None
    assert conflict(b, a) is None


def test_facets_read_quantities_and_names() -> None:
    f = facets("Pay $1,200.50 to Alice at 7:30 pm on May 3rd, not 4th")
    assert f.numbers == ("$1200.5", "19:30", "3", "4")
    assert "may" in f.dates and f.negated
    assert f.names == {"alic"}
    assert facets("A123 and 1234abc").numbers == ("1234abc", "a123")


@pytest.mark.parametrize(
    ("question", "a", "b", "same"),
    [
        ("What is the capital of France?", "Paris", "The capital of France is Paris.", True),
        ("What is the capital of France?", "Paris", "Lyon", False),
        ("What is the capital of France?", "Lyon", "The capital of France is Paris.", False),
        ("Is it raining?", "The answer is yes.", "The answer is no.", False),
        ("Is it raining?", "The answer is no.", "No.", True),
        ("Is it raining?", "The answer is yes.", "No.", False),
        ("", "The review is positive.", "The review is negative.", False),
        ("What colour is the sky?", "Sure! The sky is blue.", "Blue", True),
        ("What is 6 x 7?", "42", "6 x 7 = 42", True),
        ("What is 6 x 7?", "42", "41", False),
        ("Is Paris in France?", "Yes.", "No, it is not.", False),
        ("What is the capital of France?", "Paris.\nQuestion: What is the capital of Italy?",
         "Paris", True),
        # A degree sign reads as the words it stands for.
        ("At what temperature does water boil?", "100°C",
         "Water boils at 100 degrees Celsius, or 212 degrees Fahrenheit.", True),
        ("At what temperature does water boil?", "100 °F", "100°C", False),
        ("At what temperature does water boil?", "90°C", "100 degrees Celsius", False),
    ],
)
def test_answers_agree(question: str, a: str, b: str, same: bool) -> None:
    assert answers_agree(a, b, question).same is same
    assert answers_agree(b, a, question).same is same


def test_long_answers_without_a_word_verdict_are_left_to_the_embeddings() -> None:
    a = "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen."
    b = "Plants use sunlight to make glucose from CO2 and water, releasing oxygen gas."
    assert answers_agree(a, b).same is None


def test_answer_span_skips_lead_ins_and_echoes() -> None:
    q = "What is the capital of France?"
    assert answer_span("Sure! Great question. Paris is the capital.", q) == \
        "Paris is the capital."
    assert answer_span("The capital of France. It is Paris.", q) == "It is Paris."
    assert answer_span("", q) == ""
