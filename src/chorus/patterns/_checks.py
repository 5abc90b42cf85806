"""The confidence checks a cascade stage can use: how sure are we of a cheap model's
answer? Agreement among samples, a judge's score, the answer's own token
probabilities, or a Python function.
"""

from __future__ import annotations

import inspect
import math
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from chorus.core.errors import ChorusError, ConfigError, PatternError, ProviderError
from chorus.core.model import Model, call, error_span
from chorus.core.structured import ask_json
from chorus.core.types import Completion, Request, Span
from chorus.embeddings import Embedder
from chorus.patterns._concurrent import gather
from chorus.patterns.agreement import Extractor, normalise
from chorus.routing.acceptance import AcceptanceModel, tally_features
from chorus.routing.choice_shape import choice_features

__all__ = [
    "AgreementCheck",
    "Check",
    "FunctionCheck",
    "JudgeCheck",
    "LearnedCheck",
    "LogprobCheck",
    "Verdict",
    "accept",
    "agreement",
    "as_confidence",
    "escalates_on",
    "judge_score",
]

JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"score": {"type": "integer", "minimum": 0, "maximum": 10}},
    "required": ["score"],
    "additionalProperties": False,
}
JUDGE_PROMPT = (
    "You are grading an answer to a question.\n\nQuestion:\n{question}\n\nAnswer:\n{answer}\n\n"
    "How correct and complete is the answer, from 0 (wrong) to 10 (certainly right)? "
    'Reply with JSON only, like {"score": 7}.'
)

# -- decisions (no I/O) ----------------------------------------------------------------

def agreement(texts: Sequence[str], total: int | None = None) -> tuple[float, int]:
    """The share of ``total`` samples (default: ``len(texts)``) that give the most common
    normalised answer (case, spacing, wrapping punctuation ignored, as in vote), and the
    index of that answer's first occurrence."""
    if not texts:
        return 0.0, -1
    keys = [normalise(t) for t in texts]
    counts = Counter(keys)
    best = max(counts.values())
    index = next(i for i, k in enumerate(keys) if counts[k] == best)  # ties: earliest
    return best / (total or len(texts)), index


def judge_score(value: Any) -> float:
    """The 0..10 score in a judge's JSON answer; raises ValueError when there is none."""
    score = value.get("score") if isinstance(value, dict) else None
    if isinstance(score, str):
        try:
            score = float(score.strip())
        except ValueError:
            score = None
    if isinstance(score, bool) or not isinstance(score, int | float) or math.isnan(score):
        raise ValueError(f"the judge's answer has no numeric 'score': {value!r:.200}")
    return min(10.0, max(0.0, float(score)))


def as_confidence(value: Any) -> float:
    """A check function's result as a number: True is 1, False is 0."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float) and not math.isnan(value):
        return float(value)
    raise TypeError(f"a check function must return bool or float, got {type(value).__name__}")


def accept(confidence: float | None, threshold: float) -> bool:
    """Stop at this stage? A missing confidence is never confident."""
    return confidence is not None and confidence >= threshold


def escalates_on(error: ChorusError) -> bool:
    """A failing model sends the cascade on; a deadline, budget, guardrail or
    cancellation stops it, since a bigger model would not help."""
    return isinstance(error, ProviderError | PatternError)


@dataclass(slots=True)
class Verdict:
    """One stage's answer, how confident the check is in it, and every call it took."""

    answer: Completion
    confidence: float | None
    calls: list[Completion]
    failed: list[Span] = field(default_factory=list)
    note: str | None = None


class Check(ABC):
    """Runs a stage and judges its answer. Subclasses implement ``score`` (or ``run``)."""

    name: ClassVar[str] = "check"

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def models(self) -> Sequence[Model]:
        """Models the check itself calls (a judge)."""
        return ()

    async def run(self, model: Model, request: Request) -> Verdict:
        answer = await call(model, request)
        verdict = await self.score(request, answer)
        verdict.calls.insert(0, answer)
        return verdict

    @abstractmethod
    async def score(self, request: Request, answer: Completion) -> Verdict:
        """The verdict on ``answer``; its ``calls`` are the check's own calls."""


class AgreementCheck(Check):
    """Sample the stage ``samples`` times with different seeds; confident when the share
    agreeing on one answer reaches the threshold. Needs a temperature above 0."""

    name = "agreement"

    def __init__(self, samples: int = 3, threshold: float = 0.67, *,
                 temperature: float | None = None) -> None:
        super().__init__(threshold)
        if samples < 2:
            raise ValueError("agreement needs at least 2 samples")
        self.samples = samples
        self.temperature = temperature

    async def run(self, model: Model, request: Request) -> Verdict:
        seed = request.params.get("seed", None)
        base = seed if isinstance(seed, int) else 0
        extra = {} if self.temperature is None else {"temperature": self.temperature}
        requests = [request.with_params(seed=base + i, **extra) for i in range(self.samples)]
        outcomes = await gather([model] * self.samples, requests)
        answers = [o.completion for o in outcomes if o.completion is not None]
        if not answers:
            first = outcomes[0].error
            assert first is not None
            raise first
        share, index = agreement([a.text for a in answers], self.samples)
        count = round(share * self.samples)
        return Verdict(answers[index], share, answers, [o.span for o in outcomes if not o.ok],
                       f"{count} of {self.samples} samples agree")

    async def score(self, request: Request, answer: Completion) -> Verdict:
        raise NotImplementedError("AgreementCheck scores in run()")  # pragma: no cover


class JudgeCheck(Check):
    """Ask a judge model for ``{"score": 0..10}``; confident at or above the threshold."""

    name = "judge"

    def __init__(self, judge: Model, threshold: float = 7.0, *,
                 prompt: str = JUDGE_PROMPT) -> None:
        super().__init__(threshold)
        self.judge = judge
        self.prompt = prompt

    def models(self) -> Sequence[Model]:
        return (self.judge,)

    async def score(self, request: Request, answer: Completion) -> Verdict:
        text = self.prompt.replace("{question}", request.prompt).replace("{answer}", answer.text)
        started = time.perf_counter()
        try:
            value, calls = await ask_json(self.judge, Request.of(text), JUDGE_SCHEMA)
        except ChorusError as exc:
            if not escalates_on(exc):
                raise
            # A judge that cannot answer leaves the stage unconfirmed: escalate, keep the cost.
            calls = list(getattr(exc, "completions", []))
            failed = [] if calls else [error_span(self.judge, exc, started)]
            return Verdict(answer, None, calls, failed, f"judge failed: {exc}")
        try:
            score = judge_score(value)
        except ValueError as exc:
            return Verdict(answer, None, calls, note=str(exc))
        return Verdict(answer, score, calls, note=f"judge {self.judge.name!r} scored {score:g}")


class LogprobCheck(Check):
    """Confident when the answer's mean token log-probability reaches the threshold."""

    name = "logprob"

    def __init__(self, threshold: float = -1.0) -> None:
        super().__init__(threshold)

    async def score(self, request: Request, answer: Completion) -> Verdict:
        if answer.logprob is None:
            return Verdict(answer, None, [], note="no log-probabilities from the provider: "
                                                 "not confident")
        return Verdict(answer, answer.logprob, [])


CheckFn = Callable[[Request, Completion], Any]


class FunctionCheck(Check):
    """A Python function ``(request, completion) -> bool | float`` (may be async)."""

    name = "function"

    def __init__(self, fn: CheckFn, threshold: float = 0.5) -> None:
        super().__init__(threshold)
        self.fn = fn

    async def score(self, request: Request, answer: Completion) -> Verdict:
        result = self.fn(request, answer)
        if inspect.isawaitable(result):
            result = await result
        try:
            confidence = as_confidence(result)
        except TypeError as exc:
            # The user's function is wrong, not the stage: stop rather than escalate.
            raise ConfigError(f"cascade check {getattr(self.fn, '__name__', self.fn)!r}: "
                              f"{exc}") from None
        return Verdict(answer, confidence, [])


class LearnedCheck(Check):
    """A learned acceptance model (``routing.acceptance``) reads the prompt and the
    stage's answer: confident when its probability that the answer is right reaches the
    threshold. When the stage is a vote, the answer's features come from its tally (how
    many of the models asked agree); ``extract`` says what counts as an answer."""

    name = "learned"

    def __init__(self, model: AcceptanceModel, embedder: Embedder, threshold: float = 0.5,
                 *, extract: Extractor = normalise) -> None:
        super().__init__(threshold)
        self.model, self.embedder, self.extract = model, embedder, extract

    async def score(self, request: Request, answer: Completion) -> Verdict:
        x = await self.embedder.embed([request.prompt])
        if x.shape[1] != self.model.dims:
            raise ConfigError(f"the acceptance model was fitted on {self.model.dims}-dim "
                              f"embeddings; embedder {self.embedder.name!r} gives {x.shape[1]}")
        attrs = answer.trace.attributes if answer.trace is not None else {}
        tally = attrs.get("tally") if isinstance(attrs.get("tally"), dict) else None
        asked = int(attrs.get("votes", 0)) + len(attrs.get("failed") or {}) if tally else 1
        winner = attrs.get("winner") if isinstance(attrs.get("winner"), str) else None
        said = self.extract(answer.text)
        features = tally_features(tally, asked, bool(said),
                                  winner=winner, members=self.model.members,
                                  text=answer.text if self.model.reads_text else None)
        features += [1.0 if said == a else 0.0 for a in self.model.answers]
        if self.model.reads_choices:
            features += choice_features(request.prompt, said)
        tokens = [answer.usage.output_tokens]
        p = float(self.model.score(x, [features], tokens)[0])
        what = "P(right)" if self.model.rival is None and not self.model.priced else "score"
        note = f"{what} {p:.3f}; {features[0]:.2f} of {asked} agree"
        if self.model.priced and self.model.price is not None:
            rel = float(self.model.price.relative(x, tokens)[0])
            note += f"; escalating would cost {rel:.2f}x its mean"
        return Verdict(answer, p, [], note=note)
