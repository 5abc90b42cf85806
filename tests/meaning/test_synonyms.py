"""Synonym swaps: a word swapped for a WordNet synonym is a rewording, any other swap is not."""

from __future__ import annotations

import gzip
from importlib import resources

import pytest

from chorus.meaning import conflict
from chorus.meaning._synonyms import synonyms

SWAPS = [
    ("tell me all the things i need to buy to make pasta",
     "tell me all the things i need to purchase to make pasta"),
    ("Recommend a good movie for tonight", "Recommend a good film for tonight"),
    ("what will the new tax cost be", "what will the new tax price be"),
    ("I feel ill today", "I feel sick today"),
    ("Fix the error in this function", "Repair the mistake in this function"),
    ("order a big pizza", "order a large pizza"),
    ("what is my job title", "what is my occupation title"),
    # Two words of the opposite pairs on one end of an axis ("lower" names two axes).
    ("decrease volume level", "lower volume level"),
]

# Swaps a thesaurus must not take for rewordings: co-hyponyms, antonyms, a broader term,
# a word of an opposite pair against a WordNet synonym of another sense ("close" / "near"),
# and words the table does not know.
NOT_SWAPS = [
    ("Write a function that sorts a list ascending",
     "Write a function that sorts a list descending"),
    ("book a flight to paris", "book a flight to london"),
    ("Book a flight to Paris", "Book a flight to London"),
    ("translate good morning into french", "translate good morning into spanish"),
    ("transfer money from checking", "transfer money from savings"),
    ("is this a big problem", "is this a bad problem"),
    ("close the door", "near the door"),
    ("raise the volume", "lower the volume"),
    ("the review is positive", "the review is negative"),
    ("i gotta jump start my car", "i gotta jump start my vehicle"),
    ("order a pizza", "order a pasta"),
    ("play the song zorblat", "play the song quuxfoo"),
    ("buy a car and fix it", "purchase a boat and repair it"),
]


@pytest.mark.parametrize(("a", "b"), SWAPS)
def test_a_synonym_swap_is_a_rewording(a: str, b: str) -> None:
    assert conflict(a, b) is None
    assert conflict(b, a) is None


@pytest.mark.parametrize(("a", "b"), NOT_SWAPS)
def test_other_swaps_conflict(a: str, b: str) -> None:
    assert conflict(a, b) is not None
    assert conflict(b, a) is not None


def test_a_swap_does_not_excuse_a_negation_a_number_or_a_role() -> None:
    assert conflict("buy 2 apples", "purchase 3 apples") is not None
    assert conflict("buy apples", "do not purchase apples") is not None
    assert conflict("buy a ticket from paris to rome",
                    "purchase a ticket from rome to paris") is not None


def test_synonyms_reads_inflections_and_refuses_equal_and_unknown_words() -> None:
    assert synonyms("movies", "film")
    assert synonyms("bought", "purchase") is False  # irregular forms are not in the table
    assert synonyms("purchased", "buying")
    assert synonyms("car", "car") is False
    assert synonyms("ascending", "descending") is False
    assert synonyms("zorblat", "quuxfoo") is False


def test_the_table_ships_with_wordnets_licence_notice() -> None:
    raw = resources.files("chorus.meaning").joinpath("wordnet_synonyms.txt.gz").read_bytes()
    head = gzip.decompress(raw).decode().splitlines()[:4]
    assert any("Copyright 2006 by Princeton University" in line for line in head)
