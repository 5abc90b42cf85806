"""Whether two words are synonyms: WordNet 3.0 synsets, in a table shipped with chorus.

The table (``wordnet_synonyms.txt.gz``, built by ``scripts/build_synonyms.py``) lists, one
a line, the single lower-case words of each WordNet synset that is among the three most
frequent senses of each word listed on it. Two words are synonyms when some form of each
(the word, or its base form by WordNet's own suffix rules) shares a line. Words on
different lines are not, whatever their relation: co-hyponyms ("ascending" /
"descending", "paris" / "london"), antonyms, a word and its broader term ("car" /
"vehicle"), and any word the table lacks.
"""

from __future__ import annotations

import gzip
from functools import cache, lru_cache
from importlib import resources

__all__ = ["synonyms"]

# WordNet's detachment rules (its "morphy"), all parts of speech together: the base forms
# a word may be an inflection of.
_RULES = (
    ("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"),
    ("men", "man"), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""),
    ("ing", "e"), ("ing", ""), ("er", ""), ("est", ""), ("er", "e"), ("est", "e"),
)


@cache
def _table() -> dict[str, frozenset[int]]:
    """word -> the synset lines it is on (read once, on the first question)."""
    raw = resources.files("chorus.meaning").joinpath("wordnet_synonyms.txt.gz").read_bytes()
    out: dict[str, set[int]] = {}
    for i, line in enumerate(gzip.decompress(raw).decode().splitlines()):
        if line and not line.startswith("#"):
            for w in line.split():
                out.setdefault(w, set()).add(i)
    return {w: frozenset(s) for w, s in out.items()}


@lru_cache(maxsize=16384)
def _senses(word: str) -> frozenset[int]:
    table = _table()
    found = set(table.get(word, ()))
    for suffix, repl in _RULES:
        if word.endswith(suffix) and len(word) > len(suffix) + 1:
            found |= table.get(word[: -len(suffix)] + repl, frozenset())
    return frozenset(found)


def synonyms(a: str, b: str) -> bool:
    """Whether lower-case words ``a`` and ``b`` share a WordNet synset (a word is not its
    own synonym here: equal words are for the caller to see)."""
    return a != b and bool(_senses(a) & _senses(b))
