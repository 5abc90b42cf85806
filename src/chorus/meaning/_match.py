"""The facets of a text, and the two decisions built on them (no I/O, no model)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from chorus.meaning._options import picked
from chorus.meaning._synonyms import synonyms
from chorus.meaning._words import (
    _AXES,
    CLAUSE,
    DATES,
    DIRECTIONAL,
    FILLER,
    NEGATION,
    NUMBER_WORDS,
    OPPOSITES,
    ROLES,
    STOP,
    stem,
    tokens,
)

__all__ = ["Facets", "Verdict", "answer_span", "answers_agree", "conflict", "facets"]

# A number with what makes it a quantity: thousands commas, decimals, a time of day, a
# percent sign, an ordinal ending. A word with digits and letters mixed is a code ("A123").
_QUANTITY = re.compile(
    r"(?<![\w.])(?P<cur>[$€£])?\s?(?P<num>\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.(?P<frac>\d+))?"
    r"(?::(?P<min>\d\d))?(?P<tail>\s*(?:%|percent\b|per\s?cent\b|[ap]\.?m\b\.?|st\b|nd\b"
    r"|rd\b|th\b))?(?P<rest>\w*)",
    re.IGNORECASE,
)
_CODE = re.compile(r"\b[A-Za-z]+\d\w*")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_YES_NO = {"yes": "yes", "yeah": "yes", "yep": "yes", "no": "no", "nope": "no"}
# Answers whose words (less the question's) are this few are short answers: two different
# short answers ("Paris" / "Lyon") are two answers, whatever their embeddings say.
_SHORT = 4


def _quantity(m: re.Match[str]) -> str:
    if m.group("rest"):
        return m.group(0).strip().lower()
    value = m.group("num").replace(",", "").lstrip("0") or "0"
    frac = (m.group("frac") or "").rstrip("0")
    if frac:
        value += "." + frac
    tail = (m.group("tail") or "").strip().lower().replace(".", "").replace(" ", "")
    minutes = m.group("min")
    if tail in ("am", "pm"):
        hour = int(value) % 12 + (12 if tail == "pm" else 0) if value.isdigit() else value
        return f"{hour}:{minutes or '00'}"
    if minutes:
        return f"{value}:{minutes}"
    if tail in ("%", "percent"):
        return value + "%"
    return (m.group("cur") or "") + value


@dataclass(frozen=True, slots=True)
class Facets:
    """What the checks compare: polarity, quantities, dates, ends of opposite pairs (with
    repeats), names, content words (stemmed, in order), the role each word takes from the
    preposition before it, and the order of words, roles and clauses (``sequence``)."""

    negated: bool
    numbers: tuple[str, ...]
    dates: frozenset[str]
    poles: tuple[tuple[int, int], ...]
    names: frozenset[str]
    words: frozenset[str]
    content: tuple[str, ...]
    roles: tuple[tuple[str, str], ...]
    sequence: tuple[str, ...]
    yes_no: frozenset[str]
    #: The first written form of each content stem, to name it in a reason.
    surface: tuple[tuple[str, str], ...] = ()
    #: How many negation cues ("not ... without" has two, "without" one).
    negations: int = 0

    def shown(self, stems: Iterable[str]) -> str:
        forms = dict(self.surface)
        return ", ".join(sorted(forms.get(s, s) for s in stems)) or "-"


@lru_cache(maxsize=16384)
def facets(text: str) -> Facets:
    """The facets of ``text`` (memoised: a cache compares each stored prompt many times)."""
    numbers = [_quantity(m) for m in _QUANTITY.finditer(text)]
    numbers += [m.group(0).lower() for m in _CODE.finditer(text)]
    toks = tokens(text)
    dates: set[str] = set()
    content: list[str] = []
    sequence: list[str] = []
    roles: dict[str, str] = {}
    names: set[str] = set()
    surface: dict[str, str] = {}
    role: str | None = None
    for i, t in enumerate(toks):
        w = t.word
        if w in ROLES or w in CLAUSE:
            role = w if w in ROLES else None
            sequence.append(w)
            continue
        if w == "may" and i + 1 < len(toks) and toks[i + 1].word[:1].isdigit():
            item = "may"
            dates.add(item)
        elif w in DATES:
            item = DATES[w]
            dates.add(item)
        elif w in NUMBER_WORDS and w not in ("one", "once"):
            after = toks[i + 1].word if i + 1 < len(toks) else ""
            item = NUMBER_WORDS[w] + ("%" if after in ("percent", "%") else "")
            numbers.append(item)
        elif any(c.isdigit() for c in w):
            item = w
        elif w in STOP or w in NEGATION or not w.isalnum():
            continue
        else:
            item = stem(w)
            content.append(item)
            surface.setdefault(item, w)
            if t.name:
                names.add(item)
        sequence.append(item)
        if role is not None:
            roles.setdefault(item, role)
            role = None
    words = {stem(t.word) for t in toks}
    return Facets(
        negated=any(t.word in NEGATION for t in toks),
        numbers=tuple(sorted(numbers)),
        dates=frozenset(dates),
        poles=tuple(sorted(OPPOSITES[t.word] for t in toks if t.word in OPPOSITES)),
        names=frozenset(names),
        words=frozenset(words),
        content=tuple(content),
        roles=tuple(roles.items()),
        sequence=tuple(sequence),
        yes_no=frozenset(_YES_NO[t.word] for t in toks if t.word in _YES_NO),
        surface=tuple(surface.items()),
        negations=sum(t.word in NEGATION for t in toks),
    )


def _words(items: Iterable[str]) -> str:
    return ", ".join(sorted(items)) or "-"


def _poles(a: Facets, b: Facets, *, strict: bool) -> str | None:
    """The other end of an axis; ``strict``: also one end named more often ("12 more ...
    9 fewer" / "12 fewer ... 9 fewer")."""
    axes = {axis for axis, _ in a.poles} & {axis for axis, _ in b.poles}
    for axis in sorted(axes):
        pa = [p for x, p in a.poles if x == axis]
        pb = [p for x, p in b.poles if x == axis]
        if (Counter(pa) != Counter(pb)) if strict else (set(pa) != set(pb)):
            return "opposite words"
    return None


def _roles(a: Facets, b: Facets) -> str | None:
    ra, rb = dict(a.roles), dict(b.roles)
    shared = (set(a.sequence) & set(b.sequence)) - ROLES - CLAUSE
    for s in sorted(shared):
        x, y = ra.get(s), rb.get(s)
        if x in DIRECTIONAL and y in DIRECTIONAL and x != y:
            return f"'{a.shown([s])}' takes another role ({x} / {y})"
        # The role moved to another shared word: "capital of France" / "capital of Paris".
        for role, mine, other in ((x, ra, rb), (y, rb, ra)):
            if role is None or other.get(s) is not None:
                continue
            moved = [t for t in sorted(shared) if other.get(t) == role and mine.get(t) != role]
            if moved:
                return f"'{a.shown([s])}' and '{a.shown([moved[0]])}' swap roles"
    return None


def _moved_whole(a: Sequence[str], b: Sequence[str]) -> bool:
    """Whether ``b`` is ``a`` with one phrase or clause moved: past the common start and
    end, ``b`` is a rotation of ``a`` that cuts before a preposition or a clause word."""
    n = len(a)
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    j = 0
    while j < n - i and a[n - 1 - j] == b[n - 1 - j]:
        j += 1
    am, bm = list(a[i:n - j]), list(b[i:n - j])
    return any(bm == am[k:] + am[:k] and (am[k] in ROLES or am[k] in CLAUSE
                                          or am[0] in ROLES or am[0] in CLAUSE)
               for k in range(1, len(am)))


def _order(a: Facets, b: Facets) -> str | None:
    """The same words in another order, other than a phrase moved whole ("dog bites man")."""
    sa = [x for x in a.sequence if x in set(b.sequence)]
    sb = [x for x in b.sequence if x in set(a.sequence)]
    if sa == sb or Counter(sa) != Counter(sb) or _moved_whole(sa, sb):
        return None
    return "word order"


def _dated(f: Facets) -> Counter[str]:
    """How often each date is named ("on Monday ... on Tuesday ... on Monday")."""
    return Counter(x for x in f.sequence if x in f.dates)


def _hard(a: Facets, b: Facets, *, strict: bool) -> str | None:
    """A difference that no rewording explains. ``strict`` (prompts): quantities and dates
    must be the same; otherwise (answers) they must not be disjoint."""
    if a.negated != b.negated or (strict and a.negations != b.negations):
        return "negation"
    if strict and a.numbers != b.numbers:
        return f"numbers ({_words(a.numbers)} / {_words(b.numbers)})"
    if not strict and a.numbers and b.numbers and not set(a.numbers) & set(b.numbers):
        return f"numbers ({_words(a.numbers)} / {_words(b.numbers)})"
    if strict and a.dates != b.dates:
        return f"dates ({_words(a.dates)} / {_words(b.dates)})"
    if strict and _dated(a) != _dated(b):
        return "dates (how often each is named)"
    if not strict and a.dates and b.dates and not a.dates & b.dates:
        return f"dates ({_words(a.dates)} / {_words(b.dates)})"
    if a.yes_no and b.yes_no and a.yes_no != b.yes_no:
        return "yes / no"
    return _poles(a, b, strict=strict) or _roles(a, b)


def conflict(a: str, b: str) -> str | None:
    """Why two requests cannot be the same request (None: nothing says they differ).

    Strict, as a cache must be: a negation, another number, date or name, the other end
    of an opposite pair, swapped roles or word order, or a word in each that the other
    lacks. One text only adding words ("the capital *city* of France") or moving a phrase
    whole ("in German, can we speak") is no conflict.
    """
    fa, fb = facets(a), facets(b)
    reason = _hard(fa, fb, strict=True)
    if reason:
        return reason
    names = (fa.names - fb.words) | (fb.names - fa.words)
    if names:
        return f"names ({fa.shown(names - fb.words) or '-'} / {fb.shown(names - fa.words)})"
    only_a, only_b = Counter(fa.content) - Counter(fb.content), \
        Counter(fb.content) - Counter(fa.content)
    if only_a and only_b:
        only_a, only_b = _unswapped(fa, only_a, fb, only_b)
    if only_a and only_b:
        return f"different words ({fa.shown(only_a)} / {fb.shown(only_b)})"
    return _order(fa, fb) or _function_order(a, b)


@lru_cache(maxsize=16384)
def _all_words(text: str) -> tuple[str, ...]:
    return tuple(t.word for t in tokens(text))


def _function_order(a: str, b: str) -> str | None:
    """The very same words, function words included, in another order that no moved
    phrase explains ("from my to do list" / "from do to my list"). Past the common start
    and end, a rotation is a phrase moved whole, wherever it is cut ("... observed during
    a period?" / "during a period, ... observed")."""
    wa, wb = _all_words(a), _all_words(b)
    if wa == wb or Counter(wa) != Counter(wb):
        return None
    n, i, j = len(wa), 0, 0
    while wa[i] == wb[i]:
        i += 1
    while wa[n - 1 - j] == wb[n - 1 - j]:
        j += 1
    am, bm = wa[i:n - j], wb[i:n - j]
    if any(bm == am[k:] + am[:k] for k in range(1, len(am))):
        return None
    return "word order"


# Every end of an axis each word of the opposite pairs names ("lower": decrease and less).
_ENDS: dict[str, frozenset[tuple[int, int]]] = {
    w: frozenset((axis, pole) for axis, ends in enumerate(_AXES)
                 for pole, words in enumerate(ends) if w in words.split())
    for w in OPPOSITES
}

# More words swapped than this in one pair of requests is never read as a rewording.
_MAX_SWAPS = 3


def _swappable(x: str, y: str) -> bool:
    """Whether one word can stand for the other: WordNet synonyms, unless either is a word
    of an opposite pair, which stands only for a word of its own end ("buy" / "purchase",
    never "close" / "near")."""
    ex, ey = _ENDS.get(x), _ENDS.get(y)
    if ex is not None or ey is not None:
        return bool(ex and ey and ex & ey)
    return synonyms(x, y)


def _unswapped(fa: Facets, only_a: Counter[str], fb: Facets,
               only_b: Counter[str]) -> tuple[Counter[str], Counter[str]]:
    """``only_a`` and ``only_b`` less the words of ``a`` swapped for a synonym in ``b``
    ("buy" / "purchase"), each word used once."""
    sa, sb = dict(fa.surface), dict(fb.surface)
    left_a, left_b = Counter(only_a), Counter(only_b)
    if sum(left_a.values()) > _MAX_SWAPS or sum(left_b.values()) > _MAX_SWAPS:
        return left_a, left_b
    for x in sorted(only_a):
        for y in sorted(left_b):
            if left_a[x] and left_b[y] and _swappable(sa.get(x, x), sb.get(y, y)):
                left_a[x] -= 1
                left_b[y] -= 1
    return +left_a, +left_b


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether two answers agree: True, False, or None when the words cannot tell (then
    the embeddings decide); ``reason`` says why."""

    same: bool | None
    reason: str = ""


def _core(f: Facets, question: frozenset[str]) -> frozenset[str]:
    return frozenset((set(f.content) | f.yes_no | set(f.numbers)) - question - FILLER)


@lru_cache(maxsize=4096)
def _question_words(question: str) -> frozenset[str]:
    f = facets(question)
    return frozenset(f.content) | frozenset(f.numbers)


# Degree signs written out, so "100°C" and "100 degrees Celsius" give the same words.
_DEGREES = ((re.compile(r"\s*°\s*C\b"), " degrees Celsius"),
            (re.compile(r"\s*°\s*F\b"), " degrees Fahrenheit"), (re.compile(r"\s*°"), " degrees"))


def _spelled(text: str) -> str:
    for pattern, words in _DEGREES:
        text = pattern.sub(words, text)
    return text


def answer_span(text: str, question: str = "") -> str:
    """The part of an answer that answers: its first sentence that says more than the
    ``question`` already did (a lead-in such as "Sure!" or a restated question is skipped)."""
    q = _question_words(question)
    sentences = [s.strip() for s in _SENTENCE.split(text.strip()) if s.strip()]
    for s in sentences:
        if _core(facets(s), q):
            return s
    return sentences[0] if sentences else ""


def answers_agree(a: str, b: str, question: str = "") -> Verdict:
    """Whether answers ``a`` and ``b`` (to ``question``) say the same.

    When the question offers options ("positive or negative?", a yes/no question) and
    each answer picks one (``picked``), the options decide: the same option agrees, however
    long either answer is; another option never does. Otherwise each is cut to its answer
    span. Spans that differ in negation, yes/no, quantities,
    dates, opposite words or roles never agree. A span whose words (less the question's)
    all appear in the other agrees with it: "Paris" and "The capital of France is Paris."
    Two short spans with a word each that the other lacks disagree ("Paris" / "Lyon").
    Anything else is left to the embeddings.
    """
    pa, pb = picked(a, question), picked(b, question)
    if pa is not None and pb is not None:
        if pa == pb:
            return Verdict(True, f"both pick '{pa}'")
        return Verdict(False, f"different options ('{pa}' / '{pb}')")
    q = _question_words(question)
    sa, sb = answer_span(a, question), answer_span(b, question)
    fa, fb = facets(_spelled(sa)), facets(_spelled(sb))
    reason = _hard(fa, fb, strict=False)
    if reason:
        return Verdict(False, reason)
    ca, cb = _core(fa, q), _core(fb, q)
    if ca and cb and (ca <= cb or cb <= ca):
        return Verdict(True, "one answer contains the other")
    if ca and cb and len(ca) <= _SHORT and len(cb) <= _SHORT:
        return Verdict(False, f"different answers ({fa.shown(ca - cb)} / {fb.shown(cb - ca)})")
    return Verdict(None)
