"""Whether two texts can mean the same: the checks that look past an embedding.

    from chorus.meaning import conflict, answers_agree
    conflict("Cancel my order 1234", "Do not cancel my order 1234")   # 'negation'
    answers_agree("Paris", "The capital of France is Paris.").same    # True

Cosine similarity of sentence embeddings does not measure agreement: on MiniLM "Cancel my
order 1234" and "Do not cancel my order 1234" score 0.98 while "Paris" and "The capital of
France is Paris." score 0.73, so no threshold separates the two. chorus uses embeddings
only to find candidates; the rules here then decide, for the semantic cache (two
requests) and for votes and consensus by meaning (two answers). Two texts never match
when they differ in negation, numbers and quantities, dates, names, the ends of an
opposite pair (ascending / descending, yes / no, before / after, ...), or in the roles of
their words (from Paris to Rome / from Rome to Paris). Answers are compared by their
answer span, less the words that echo the question, so a short answer agrees with a long
one that contains it. When the question offers options ("positive or negative?", "A, B or
C?", a yes/no question), answers that each pick one are compared by the option picked.

A content word swapped for another is a difference, unless WordNet 3.0 lists the two as
synonyms in one of their three most frequent senses ("movie" / "film"; a table of
WordNet synsets ships with chorus, nothing is fetched): co-hyponyms ("ascending" /
"descending", "paris" / "london"), antonyms, broader terms ("car" / "vehicle") and words
it does not know stay differences, and a word of an opposite pair stands only for a word
of its own end. Besides that table, the rules read only closed classes of English words
(function words, negation cues, number and calendar words, opposite pairs): they know no
topic and no name. They are
English-only; text in another language falls back to the strictest reading (any word
that differs is a difference).
"""

from __future__ import annotations

from chorus.meaning._match import (
    Facets,
    Verdict,
    answer_span,
    answers_agree,
    conflict,
    facets,
)
from chorus.meaning._options import options, picked

__all__ = ["Facets", "Verdict", "answer_span", "answers_agree", "conflict", "facets",
           "options", "picked"]
