"""Scorers: how right an answer is, from 0 to 1 (None when it cannot be told).

    make_scorer("exact")            normalised exact match with the reference
    make_scorer("contains")         the normalised reference as whole words in the answer
    make_scorer("choice")           the choice letter (A-J) in the answer vs the reference
    make_scorer("numeric")          the final number (GSM8K's ``#### n`` too) vs the reference
    make_scorer("regex:PATTERN")    group 1 vs the reference, or 1 when PATTERN matches
    make_scorer("judge", judge=m)   an LLM grades the answer 0-10 against a rubric
    make_scorer("py:pkg.mod:fn")    fn(item, answer_text) -> float (or awaitable)
    make_scorer("recorded", outcomes=t)  the recorded score of the model that answered

The text-level functions (``normalize``, ``extract_choice``, ``extract_number``) are
plain and tested on their own.
"""

from __future__ import annotations

import inspect
import math
import re
import string
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from chorus.core.errors import ChorusError, MalformedResponse
from chorus.core.model import Model
from chorus.core.types import Completion, Request
from chorus.eval.datasets import Item

if TYPE_CHECKING:
    from chorus.eval.outcomes import OutcomeItem

__all__ = [
    "Scorer",
    "ExactMatch",
    "Contains",
    "ChoiceLetter",
    "Numeric",
    "RegexScorer",
    "JudgeScorer",
    "FunctionScorer",
    "RecordedScorer",
    "make_scorer",
    "normalize",
    "holds",
    "extract_choice",
    "extract_number",
]

Scored = tuple[float | None, list[Completion]]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (SQuAD's normalisation)."""
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCT))
    return " ".join(text.split())


_CHOICE_PATTERNS = [
    re.compile(r"answer\s+is:?\s*\(?([A-J])\b\)?", re.IGNORECASE),
    re.compile(r"answer:\s*\(?([A-J])\b\)?", re.IGNORECASE),
    re.compile(r"\(([A-J])\)"),
    # A bare leading letter needs punctuation after it ("C." / "C)"), or nothing at all:
    # "I think ..." must not read as choice I.
    re.compile(r"^\s*([A-J])(?:[.):]|\s*$)"),
]


def extract_choice(text: str, letters: str = "ABCDEFGHIJ") -> str | None:
    """The choice letter an answer gives: "The answer is (C)", "Answer: C", "C.", "(C)"."""
    for pattern in _CHOICE_PATTERNS:
        found = [m.group(1).upper() for m in pattern.finditer(text)]
        found = [f for f in found if f in letters]
        if found:
            # "answer is" phrases: the last one is the final answer.
            return found[-1] if pattern is not _CHOICE_PATTERNS[3] else found[0]
    return None


_NUMBER = r"-?\$?\d[\d,]*(?:\.\d+)?"
_HASHES = re.compile(r"####\s*(" + _NUMBER + ")")
_ANSWER_IS = re.compile(r"answer\s+is\s*:?\s*(" + _NUMBER + ")", re.IGNORECASE)
_ANY_NUMBER = re.compile(_NUMBER)


def _to_float(raw: str) -> float | None:
    try:
        return float(raw.replace(",", "").replace("$", "").rstrip("."))
    except ValueError:
        return None


def extract_number(text: str) -> float | None:
    """The final numeric answer: after ``####``, else after "answer is", else the last
    number in the text."""
    for pattern in (_HASHES, _ANSWER_IS):
        found = pattern.findall(text)
        if found:
            return _to_float(found[-1])
    found = _ANY_NUMBER.findall(text)
    return _to_float(found[-1]) if found else None


class Scorer(ABC):
    """Scores one answer to one item. ``calls`` are model calls the scorer made."""

    name: str = "scorer"

    @abstractmethod
    async def score(self, item: Item, answer: Completion) -> Scored:
        """The score in [0, 1] (None: cannot tell) and the model calls made for it."""


class _TextScorer(Scorer):
    def __init__(self, fn: Callable[[str, str], float], name: str) -> None:
        self.fn, self.name = fn, name

    async def score(self, item: Item, answer: Completion) -> Scored:
        if item.reference is None:
            return None, []
        return self.fn(answer.text, item.reference), []


def _exact(text: str, reference: str) -> float:
    return float(normalize(text) == normalize(reference))


def holds(text: str, reference: str) -> bool:
    """Whether the answer holds the whole reference as words, once both are normalised:
    "The capital of France is Paris." holds "Paris"; "Parisian" does not. It does not read
    the sentence, so "It is not Paris." holds it too."""
    ref = normalize(reference)
    return bool(ref) and f" {ref} " in f" {normalize(text)} "


def _contains(text: str, reference: str) -> float:
    return float(holds(text, reference))


def _choice(text: str, reference: str) -> float:
    ref = extract_choice(reference) or reference.strip().upper()
    return float(extract_choice(text) == ref)


def _numeric(text: str, reference: str) -> float:
    got, want = extract_number(text), extract_number(reference)
    if got is None or want is None:
        return 0.0
    return float(math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-6))


class ExactMatch(_TextScorer):
    def __init__(self) -> None:
        super().__init__(_exact, "exact")


class Contains(_TextScorer):
    def __init__(self) -> None:
        super().__init__(_contains, "contains")


class ChoiceLetter(_TextScorer):
    def __init__(self) -> None:
        super().__init__(_choice, "choice")


class Numeric(_TextScorer):
    def __init__(self) -> None:
        super().__init__(_numeric, "numeric")


class RegexScorer(Scorer):
    """With a capture group: group 1 of the first match, normalised, vs the reference.
    Without one: 1 when the pattern matches the answer at all."""

    def __init__(self, pattern: str) -> None:
        try:
            self.pattern = re.compile(pattern, re.IGNORECASE | re.DOTALL)
        except re.error as exc:
            raise ChorusError(f"scorer regex {pattern!r} does not compile: {exc}") from None
        self.name = f"regex:{pattern}"

    async def score(self, item: Item, answer: Completion) -> Scored:
        m = self.pattern.search(answer.text)
        if self.pattern.groups == 0:
            return float(m is not None), []
        if item.reference is None:
            return None, []
        return float(m is not None and normalize(m.group(1) or "") == normalize(item.reference)), []


_JUDGE_SYSTEM = (
    "You grade an answer to a question. Rubric: {rubric}\n"
    "{reference}"
    'Reply with only JSON: {{"score": N}} where N is from 0 (worst) to 10 (best).'
)
DEFAULT_RUBRIC = "Is the answer correct, complete and to the point?"


class JudgeScorer(Scorer):
    """An LLM grades the answer 0-10 against ``rubric`` (and the reference when there
    is one); the score is that grade / 10. The judge's calls are reported."""

    def __init__(self, judge: Model, rubric: str = DEFAULT_RUBRIC) -> None:
        self.judge, self.rubric = judge, rubric
        self.name = f"judge:{judge.name}"

    async def score(self, item: Item, answer: Completion) -> Scored:
        from chorus.core.structured import ask_json
        from chorus.patterns.weighted import SCORE_SCHEMA, judge_score

        ref = f"A reference answer: {item.reference}\n" if item.reference else ""
        ask = Request.of(f"Question:\n{item.prompt}\n\nAnswer:\n{answer.text}",
                         system=_JUDGE_SYSTEM.format(rubric=self.rubric, reference=ref),
                         temperature=0)
        value, calls = await ask_json(self.judge, ask, SCORE_SCHEMA)
        try:
            return judge_score(value) / 10.0, calls
        except ValueError as exc:
            raise MalformedResponse(f"judge: {exc}", model=self.judge.name) from None


class FunctionScorer(Scorer):
    """A Python callable ``fn(item, answer_text) -> float`` (sync or async)."""

    def __init__(self, fn: Callable[[Item, str], float | Awaitable[float]],
                 name: str = "function") -> None:
        self.fn, self.name = fn, f"py:{name}"

    async def score(self, item: Item, answer: Completion) -> Scored:
        result: Any = self.fn(item, answer.text)
        if inspect.isawaitable(result):
            result = await result
        if result is None:
            return None, []
        try:
            value = float(result)
        except (TypeError, ValueError):
            value = math.nan
        if not 0.0 <= value <= 1.0:  # NaN fails too
            raise ChorusError(f"scorer {self.name} returned {result!r} for item {item.id!r}; "
                              "a score is a number in [0, 1] (or None: cannot tell)")
        return value, []


class RecordedScorer(Scorer):
    """The score recorded in an outcome table for the model that produced the answer,
    so systems built from ``replay`` models are scored without any reference."""

    name = "recorded"

    def __init__(self, outcomes: Mapping[str, OutcomeItem]) -> None:
        self.outcomes = outcomes

    async def score(self, item: Item, answer: Completion) -> Scored:
        # The replay leaf that answered put the recorded score on its span.
        if answer.trace is not None:
            for span in reversed(list(answer.trace.walk())):
                if span.name == answer.model and "recorded_score" in span.attributes:
                    value = span.attributes["recorded_score"]
                    return (None if value is None else float(value)), []
        row = self.outcomes.get(item.id)
        found = row.outcomes.get(answer.model) if row is not None else None
        return (None if found is None else found.score), []


def make_scorer(spec: str, *, judge: Model | None = None, rubric: str | None = None,
                outcomes: Mapping[str, OutcomeItem] | None = None) -> Scorer:
    """The scorer a spec names (see the module docstring)."""
    if spec == "exact":
        return ExactMatch()
    if spec == "contains":
        return Contains()
    if spec in ("choice", "letter"):
        return ChoiceLetter()
    if spec in ("numeric", "number", "gsm8k"):
        return Numeric()
    if spec.startswith("regex:"):
        return RegexScorer(spec[len("regex:"):])
    if spec == "judge":
        if judge is None:
            raise ChorusError("the judge scorer needs a judge model (--judge NAME)")
        return JudgeScorer(judge, rubric or DEFAULT_RUBRIC)
    if spec.startswith("py:"):
        from chorus.providers.function import import_callable

        try:
            fn = import_callable(spec[3:])
        except ValueError as exc:
            raise ChorusError(f"scorer {spec!r}: {exc}") from None
        return FunctionScorer(fn, spec[3:])
    if spec == "recorded":
        if outcomes is None:
            raise ChorusError("the recorded scorer needs an outcome table as the dataset")
        return RecordedScorer(outcomes)
    raise ChorusError(f"unknown scorer {spec!r}; known: exact, contains, choice, numeric, "
                      "regex:PATTERN, judge, py:module:function, recorded")
