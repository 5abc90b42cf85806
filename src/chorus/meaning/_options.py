"""The options a question offers, and the one an answer picks (no I/O, no model).

    options("Is the review 'I loved it' positive or negative?")   # ('positive', 'negative')
    options("Is Paris in France?")                                # ('yes', 'no')
    picked("The review is positive, not negative.", q)            # 'positive'

A question that offers options ("A or B?", "A, B or C?", or a yes/no question) is answered
by picking one; two answers that pick the same option agree however long either is, and
two that pick different options never agree. The rules read only the question's shape
(the words either side of "or", an auxiliary verb in front) and closed classes of English
words (function words, negation cues): they know no topic.
"""

from __future__ import annotations

import re
from functools import lru_cache

from chorus.meaning._words import NEGATION, STOP, stem

__all__ = ["options", "picked"]

# Quoted text is what the question is about, not what it asks: "Is 'yes or no' a phrase?"
_QUOTED = re.compile(r"\"[^\"]*\"|“[^”]*”|‘[^’]*’|(?<!\w)'[^']*'(?!\w)")
# Words, and the punctuation that ends a phrase (a comma too: "positive, not negative").
_PIECE = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|[.,!?;:\n()\[\]]")
_BREAK = frozenset(".,!?;:\n()[]")
# A question that opens with one of these, and offers no "or", is a yes/no question.
_AUXILIARY = frozenset("""is are was were am do does did can could will would shall should
may might must has have had isnt arent wasnt werent dont doesnt didnt cant couldnt wont
wouldnt shouldnt hasnt havent""".split())
_YES = frozenset("yes yeah yep yup correct true".split())
_NO = frozenset("no nope incorrect false".split())
# How far back a negation cue reaches within a phrase ("not necessarily negative").
_REACH = 3
_MAX_WORDS = 4


def _words(text: str) -> list[str]:
    return [w.lower().replace("’", "'").replace("'", "") for w in _PIECE.findall(text)]


def _run_before(words: list[str], end: int) -> list[str]:
    """The content words right before ``end`` (back to a function word or a break)."""
    run: list[str] = []
    i = end - 1
    while i >= 0 and words[i] not in _BREAK and words[i] not in STOP and len(run) < _MAX_WORDS:
        run.insert(0, words[i])
        i -= 1
    return run


def _run_after(words: list[str], start: int) -> list[str]:
    """The content words from ``start`` (after an article) to a function word or a break."""
    run: list[str] = []
    i = start
    while i < len(words) and words[i] in ("a", "an", "the"):
        i += 1
    while i < len(words) and words[i] not in _BREAK and words[i] not in STOP \
            and len(run) < _MAX_WORDS:
        run.append(words[i])
        i += 1
    return run


@lru_cache(maxsize=4096)
def options(question: str) -> tuple[str, ...]:
    """The options ``question`` offers: the phrases joined by its last "or" (and the
    comma-separated ones before them), ('yes', 'no') for a yes/no question, else ()."""
    words = _words(_QUOTED.sub(" ", question))
    ors = [i for i, w in enumerate(words) if w == "or"]
    if not ors:
        if words and words[0] in _AUXILIARY:
            return ("yes", "no")
        return ()
    at = ors[-1]
    right = _run_after(words, at + 1)
    # "A, B, or C": skip the comma before "or".
    left_end = at - 1 if at > 0 and words[at - 1] == "," else at
    left = _run_before(words, left_end)
    if not right or not left:
        return ()
    # Both sides name one kind of thing: as many words each ("New York or Los Angeles";
    # "the review positive or negative" offers "positive").
    k = min(len(left), len(right))
    found = [" ".join(left[-k:]), " ".join(right[:k])]
    # Earlier options of a list: "A, B, or C" / "A, B or C".
    i = left_end - len(left[-k:]) - 1
    while i >= 0 and words[i] == ",":
        prev = _run_before(words, i)
        if not prev:
            break
        found.insert(0, " ".join(prev[-k:]))
        i -= len(prev[-k:]) + 1
    stems = [tuple(stem(w) for w in o.split()) for o in found]
    if len(set(stems)) != len(stems):
        return ()
    return tuple(found)


def _echo(words: list[str], at: int, k: int) -> bool:
    """Whether the option at ``words[at:at + k]`` has an "or" within two words of it, in
    the same phrase: the answer repeats the choice instead of making it."""
    for j in (*range(at + k, min(len(words), at + k + 2)), *range(at - 1, max(-1, at - 3), -1)):
        if words[j] in _BREAK:
            continue
        if words[j] == "or":
            return True
    return False


def _negated(words: list[str], at: int) -> bool:
    for j in range(at - 1, max(-1, at - 1 - _REACH), -1):
        if words[j] in _BREAK:
            return False
        if words[j] in NEGATION:
            return True
    return False


def picked(answer: str, question: str) -> str | None:
    """The option of ``question`` that ``answer`` picks: the first one it names that is
    not negated ("not negative") and not part of an "A or B" echo of the question; for a
    yes/no question, a yes or no that opens the answer or follows "answer is", else the
    polarity of a sentence that restates the question ("The sun is a star."). None when
    the question offers no options or the answer names none of them."""
    offered = options(question)
    if not offered:
        return None
    named = {" ".join(_words(o)) for o in offered}
    # A quoted option is named ('The answer is "cold"'); other quoted text is not.
    words = _words(_QUOTED.sub(
        lambda m: m.group(0) if " ".join(_words(m.group(0))) in named else " ", answer))
    if offered == ("yes", "no"):
        return _yes_no(words) or _restated(answer, question)
    wanted = [(o, tuple(stem(w) for w in o.split())) for o in offered]
    stems = [stem(w) for w in words]
    for i in range(len(words)):
        for option, parts in wanted:
            k = len(parts)
            if tuple(stems[i:i + k]) != parts:
                continue
            # An echo of the choice: "positive or negative", "not too hot or too cold".
            if _echo(words, i, k):
                continue
            if _negated(words, i):
                continue
            return option
    return None


_SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n+")


def _restated(answer: str, question: str) -> str | None:
    """A yes/no question answered by restating it: the first sentence of the answer that
    holds every content word of the question says yes, or no when it is negated ("Is a
    whale a fish?" / "A whale is a mammal, but it is not a fish.")."""
    asked = {stem(w) for w in _words(_QUOTED.sub(" ", question))
             if w not in STOP and w not in _BREAK and w not in _AUXILIARY}
    if not asked:
        return None
    for sentence in _SENTENCE.split(_QUOTED.sub(" ", answer)):
        words = _words(sentence)
        if asked <= {stem(w) for w in words}:
            return "no" if any(w in NEGATION for w in words) else "yes"
    return None


def _yes_no(words: list[str]) -> str | None:
    """A yes or no that opens the answer ("No, it is not.") or is stated as the answer
    ("The answer is yes.")."""
    content = [w for w in words if w not in _BREAK]
    for i, w in enumerate(content[:8]):
        if w not in _YES and w not in _NO:
            continue
        # "The answer (to this question) is no", "Short answer: yes".
        stated = i > 0 and content[i - 1] in ("is", "answer") and "answer" in content[:i]
        if i == 0 or stated:
            return "yes" if w in _YES else "no"
    return None
