"""The options a question offers, the one an answer picks, and votes grouped by them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from chorus.core.types import Request
from chorus.embeddings import Vectors
from chorus.meaning import answers_agree, options, picked
from chorus.patterns.agreement import Answer, group_answers
from chorus.patterns.vote import Vote
from chorus.providers.scripted import ScriptedModel
from tests.patterns._fakes import TableEmbedder

LOVED = "Is the review 'I loved this film, it was wonderful' positive or negative?"


@pytest.mark.parametrize(
    ("question", "offered"),
    [
        (LOVED, ("positive", "negative")),
        ("Is it New York or Los Angeles?", ("new york", "los angeles")),
        ("Should I use Python or Java for this?", ("python", "java")),
        ("Is coffee or tea healthier?", ("coffee", "tea")),
        ("Which is bigger, a cat or a dog?", ("cat", "dog")),
        ("Is it red, green, or blue?", ("red", "green", "blue")),
        ("Is it red, green or blue?", ("red", "green", "blue")),
        ("Is Paris in France?", ("yes", "no")),
        ("Doesn't it rain in Paris?", ("yes", "no")),
        # Quoted text is what is asked about: its "or" offers nothing.
        ("Does 'now or never' rhyme?", ("yes", "no")),
        ("What is the capital of France?", ()),
        ("Name the capital of France and the capital of Italy.", ()),
        ("Is it this or that?", ()),
    ],
)
def test_options_come_from_the_question_shape(question: str, offered: tuple[str, ...]) -> None:
    assert options(question) == offered


@pytest.mark.parametrize(
    ("question", "answer", "option"),
    [
        (LOVED, "The review is positive, and the overall sentiment is positive.", "positive"),
        (LOVED, "Negative", "negative"),
        (LOVED, "Positive.", "positive"),
        # The first option named that is not negated; an echo of the choice is skipped.
        (LOVED, "It is not positive, it is negative.", "negative"),
        (LOVED, "The review is positive, as it is not necessarily negative.", "positive"),
        (LOVED, "Is it positive or negative? It is negative.", "negative"),
        (LOVED, "The review appears to be negative, but has a positive tone.", "negative"),
        # Words quoted from the review pick nothing.
        ("Is the review 'not bad, positive even' positive or negative?",
         "The reviewer says \"positive even\", but it reads negative.", "negative"),
        (LOVED, "Neither positive nor negative.", None),
        ("Is ice hot or cold?", 'The answer is "cold".', "cold"),
        ("Is ice hot or cold?", "It is not too hot or too cold.", None),
        ("Is ice hot or cold?", "They say 'hot coffee' but ice is cold.", "cold"),
        (LOVED, "It is neutral.", None),
        ("Is it New York or Los Angeles?", "Los Angeles, of course.", "los angeles"),
        ("Is it red, green or blue?", "I'd say green.", "green"),
        ("Is it raining?", "The answer is yes.", "yes"),
        ("Is it raining?", "No.", "no"),
        ("Is it raining?", "No, it is not.", "no"),
        ("Is it raining?", "Short answer: no.", "no"),
        ("Is it raining?", "The answer to this question is no.", "no"),
        ("Is it raining?", "It is a fine day, no doubt.", None),
        ("Is it raining?", "Yes, it is raining in Paris.", "yes"),
        # A "no" inside a sentence is not an explicit answer, but the sentence restates
        # the question, negated; one that does not restate it picks nothing.
        ("Is it raining?", "There is no rain today.", "no"),
        ("Is it raining?", "Take an umbrella, no doubt.", None),
        ("What is the capital of France?", "Paris", None),
        # A restated question says yes, or no when negated; a sentence missing one of the
        # question's words restates nothing.
        ("Is a whale a fish?", "A whale is a mammal, but it is not a fish.", "no"),
        ("Is a whale a fish?", "Whales are mammals. A whale is not a fish.", "no"),
        ("Is the sun a star?", "The sun is a star at the centre of our solar system.", "yes"),
        ("Is the sun a star?", "A star is a ball of gas.", None),
    ],
)
def test_picked(question: str, answer: str, option: str | None) -> None:
    assert picked(answer, question) == option


@pytest.mark.parametrize(
    ("question", "a", "b", "same"),
    [
        # Long and short answers that pick one option agree; other options never do.
        (LOVED, "The review is positive, and the reviewer praises the storytelling.",
         "Positive.", True),
        (LOVED, "This review is a positive one, as the author expresses enthusiasm.",
         "The review is positive, and the overall sentiment is positive.", True),
        (LOVED, "The review is positive.", "The review is negative.", False),
        (LOVED, "Positive", "Negative", False),
        ("Is it raining?", "The answer is yes.", "The answer is no.", False),
        ("Is it raining?", "The answer is no.", "No.", True),
        ("Is it raining?", "Yes.", "Yes, it has rained all day in Paris.", True),
        ("Is it New York or Los Angeles?", "New York.", "It is Los Angeles.", False),
        ("Is a whale a fish?", "No, a whale is not a fish. Whales are mammals.",
         "A whale is a mammal, but it is not a fish.", True),
        ("Is a whale a fish?", "Yes", "A whale is a mammal, but it is not a fish.", False),
    ],
)
def test_answers_agree_by_the_option_they_pick(question: str, a: str, b: str,
                                                same: bool) -> None:
    assert answers_agree(a, b, question).same is same
    assert answers_agree(b, a, question).same is same


async def test_vote_groups_answers_by_the_option_they_pick() -> None:
    # Embeddings that would put the two "positive" answers apart and the negative one
    # next to the first: the picked option decides, not the cosine.
    long_pos = "The review is positive, and the overall sentiment is positive."
    other_pos = "This review is a positive one, as the author expresses enthusiasm."
    emb = TableEmbedder({long_pos: [1.0, 0.0], "Negative": [0.99, 0.1],
                         other_pos: [0.0, 1.0]})
    kids = [ScriptedModel("a", default=long_pos), ScriptedModel("b", default="Negative"),
            ScriptedModel("c", default=other_pos)]
    out = await Vote("v", kids, by_meaning=True, embedder=emb, similarity=0.75).complete(
        Request.of(LOVED))
    assert out.trace is not None
    tally = out.trace.attributes["tally"]
    assert sorted(r["models"] for r in tally.values()) == [["a", "c"], ["b"]]
    assert out.model in ("a", "c")


class _SameVector(TableEmbedder):
    """Every text at one point: cosine 1.0 for every pair, the worst case for a vote."""

    def __init__(self, vector: list[float]) -> None:
        super().__init__({})
        self.vector = vector

    async def _embed(self, texts: Sequence[str]) -> Vectors:
        return np.array([self.vector] * len(texts), dtype=np.float32)


# The pairs, as two answers to one question each: contradictions score higher than
# agreements on MiniLM, so none may join a group whatever its cosine.
CONTRADICTIONS = [
    ("What should I do?", "Cancel my order 1234", "Do not cancel my order 1234"),
    ("What should I ask?", "Should I take ibuprofen with alcohol?",
     "Should I not take ibuprofen with alcohol?"),
    ("What is true?", "Paris is the capital of France.", "Paris is not the capital of France."),
    ("What function?", "Write a function that sorts a list ascending",
     "Write a function that sorts a list descending"),
    ("Is it raining?", "The answer is yes.", "The answer is no."),
    ("Is it raining?", "The answer is yes.", "No."),
    ("Is the review positive or negative?", "The review is positive.", "The review is negative."),
    ("", "The review is positive.", "The review is negative."),
]


@pytest.mark.parametrize(("question", "a", "b"), CONTRADICTIONS)
async def test_a_contradiction_never_joins_a_group(question: str, a: str, b: str) -> None:
    answers = [Answer(0, "x", a.lower(), a), Answer(1, "y", b.lower(), b)]
    groups = await group_answers(answers, _SameVector([1.0, 0.0]), 0.0, question)
    assert [g.models for g in groups] == [["x"], ["y"]]


async def test_a_short_answer_joins_its_long_form_whatever_the_cosine() -> None:
    emb = TableEmbedder({"Paris": [1.0, 0.0], "The capital of France is Paris.": [0.0, 1.0]})
    answers = [Answer(0, "x", "paris", "Paris"),
               Answer(1, "y", "the capital of france is paris", "The capital of France is Paris.")]
    groups = await group_answers(answers, emb, 0.99, "What is the capital of France?")
    assert [g.models for g in groups] == [["x", "y"]]
