"""Weighted: every model answers, each answer is scored, the best-scored answer wins.

    Weighted("w", [a, b], judge=c, rubric="correct and concise", weights={"a": 1, "b": 0.5})
    Weighted("w", [a, b], scorer=lambda request, answer: float(len(answer) < 200))

An answer's score comes from an LLM ``judge`` (asked for JSON ``{"score": 0..10}``
following ``rubric``) or from a Python ``scorer(request, answer) -> float``; it is
multiplied by the model's weight. Equivalent answers (normalised exact match, or by
meaning when an ``embedder`` is given) pool their weighted scores, and the group with
the highest total wins; its best-scored member's words are returned.

Weights learn from real outcomes: ``record_outcome(model, reward)`` applies the
multiplicative-weights (Hedge) rule documented in ``patterns/_weights.py`` and, with
a ``weights_file``, saves them atomically; they are loaded again when the system is
built.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from chorus.config.schema import ModelRef, PatternConfig
from chorus.core.compose import combine, failed_span
from chorus.core.errors import AllModelsFailed, ChorusError, MalformedResponse, StepFailed
from chorus.core.model import Model, error_span
from chorus.core.registry import BuildContext, config_path
from chorus.core.structured import ask_json
from chorus.core.types import Completion, Request, Span
from chorus.embeddings import Embedder
from chorus.patterns._concurrent import gather
from chorus.patterns._weights import hedge_update, load_weights, save_weights
from chorus.patterns.agreement import (
    Answer,
    Group,
    collect,
    display_labels,
    group_answers,
    pick,
)

__all__ = ["Weighted", "WeightedConfig", "SCORE_SCHEMA", "build", "judge_score"]

Scorer = Callable[[Request, str], "float | Awaitable[float]"]

SCORE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"score": {"type": "number", "minimum": 0, "maximum": 10}},
    "required": ["score"],
    "additionalProperties": False,
}
DEFAULT_RUBRIC = "Is the answer correct, complete and to the point?"
_JUDGE_SYSTEM = (
    "You grade one answer to a question. Rubric: {rubric}\n"
    'Reply with only JSON: {{"score": N}} where N is from 0 (worst) to 10 (best).'
)


def judge_score(value: Any) -> float:
    """The score in a judge's parsed JSON, clamped to 0..10; ValueError when absent."""
    raw: Any = value.get("score") if isinstance(value, dict) else value
    try:
        score = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"no numeric score in {value!r}") from None
    if score != score:  # NaN
        raise ValueError("the score is NaN")
    return min(10.0, max(0.0, score))


class Weighted(Model):
    kind = "weighted"
    family = "ensemble"

    def __init__(
        self,
        name: str,
        models: Sequence[Model],
        *,
        judge: Model | None = None,
        rubric: str = DEFAULT_RUBRIC,
        scorer: Scorer | None = None,
        weights: Mapping[str, float] | None = None,
        weights_file: str | Path | None = None,
        eta: float = 0.5,
        embedder: Embedder | None = None,
        similarity: float = 0.8,
        timeout_s: float | None = None,
    ) -> None:
        super().__init__(name)
        if not models:
            raise ValueError("weighted needs at least one model")
        if (judge is None) == (scorer is None):
            raise ValueError("weighted needs exactly one evaluator: judge or scorer")
        if eta <= 0:
            raise ValueError("eta must be > 0")
        self.models = list(models)
        self.names = [m.name for m in self.models]
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"weighted models must have distinct names: {self.names}")
        given = dict(weights or {})
        unknown = set(given) - set(self.names)
        if unknown:
            raise ValueError(f"weights name unknown models: {', '.join(sorted(unknown))}")
        if any(w <= 0 for w in given.values()):
            raise ValueError("weights must be > 0")
        self.weights = {n: float(given.get(n, 1.0)) for n in self.names}
        self.weights_file = Path(weights_file) if weights_file is not None else None
        if self.weights_file is not None:
            saved = load_weights(self.weights_file)
            if saved:
                self.weights.update({n: w for n, w in saved.items() if n in self.weights})
        self.judge, self.rubric, self.scorer = judge, rubric, scorer
        self.eta = eta
        self.embedder = embedder
        self.similarity = similarity
        self.timeout_s = timeout_s
        self._lock = threading.Lock()

    def children(self) -> Sequence[Model]:
        return list(dict.fromkeys([*self.models, *([self.judge] if self.judge else [])]))

    def record_outcome(self, model_name: str, reward: float) -> dict[str, float]:
        """Update the weights from one real outcome and persist them; returns the weights.

        Hedge: ``w[model] *= exp(eta * (reward - 0.5))`` with ``reward`` in [0, 1], then
        all weights are rescaled so their total is unchanged (see ``_weights.py``).
        """
        with self._lock:
            self.weights = hedge_update(self.weights, model_name, reward, self.eta)
            if self.weights_file is not None:
                save_weights(self.weights_file, self.weights, rule="hedge", eta=self.eta)
            return dict(self.weights)

    async def _score(self, request: Request, text: str) -> tuple[float, list[Completion]]:
        if self.scorer is not None:
            result = self.scorer(request, text)
            value = await result if inspect.isawaitable(result) else result
            return float(value), []
        assert self.judge is not None
        ask = Request.of(f"Question:\n{request.prompt}\n\nAnswer:\n{text}",
                         system=_JUDGE_SYSTEM.format(rubric=self.rubric), temperature=0)
        value, calls = await ask_json(self.judge, ask, SCORE_SCHEMA)
        try:
            return judge_score(value), calls
        except ValueError as exc:
            err = MalformedResponse(f"judge: {exc}", model=self.judge.name)
            err.completions = calls  # type: ignore[attr-defined]
            raise err from None

    async def _judged(
        self, request: Request, text: str
    ) -> tuple[float | ChorusError, list[Completion], list[Span]]:
        started = time.perf_counter()
        try:
            score, calls = await self._score(request, text)
            return score, calls, []
        except ChorusError as exc:
            calls = list(getattr(exc, "completions", []))
            judge = self.judge or self
            return exc, calls, [error_span(judge, exc, started)]

    async def complete(self, request: Request) -> Completion:
        started = time.perf_counter()
        outcomes = await gather(self.models, request, timeout_s=self.timeout_s)
        parts = [o.completion for o in outcomes if o.completion is not None]
        failed: list[Span] = [o.span for o in outcomes if o.completion is None]
        answers, errors = collect(outcomes, self.names, weights=self.weights)
        if not answers:
            err = AllModelsFailed(self.name, errors)
            err.trace = failed_span(self, err, failed)
            raise err
        # Identical answers are scored once.
        keys = list(dict.fromkeys(a.key for a in answers))
        first = {a.key: a.text for a in reversed(answers)}
        judged = await asyncio.gather(*(self._judged(request, first[k]) for k in keys))
        scores: dict[str, float] = {}
        judge_errors: dict[str, ChorusError] = {}
        for key, (result, calls, spans) in zip(keys, judged, strict=True):
            parts.extend(calls)
            failed.extend(spans)
            if isinstance(result, ChorusError):
                judge_errors[key] = result
            else:
                scores[key] = result
        scored = [a for a in answers if a.key in scores]
        if not scored:
            step = StepFailed(self.name, "judge", next(iter(judge_errors.values())))
            spans = [p.trace for p in parts if p.trace is not None]
            step.trace = failed_span(self, step, [*spans, *failed])
            raise step
        groups = await group_answers(scored, self.embedder, self.similarity, request.prompt)
        points = {a.model: scores[a.key] * a.weight for a in scored}
        winner, tied = pick(groups, "order", lambda g: sum(points[a.model] for a in g.members))
        best = _best_member(winner, points)
        chosen = outcomes[best.index].completion
        assert chosen is not None  # every answer comes from a successful outcome
        shown = display_labels(groups)
        attributes: dict[str, Any] = {
            "evaluator": f"judge:{self.judge.name}" if self.judge else "scorer",
            "scores": {a.model: {"score": round(scores[a.key], 4), "weight": round(a.weight, 6),
                                 "weighted": round(points[a.model], 4)} for a in scored},
            "pooled": {shown[g.key]: {"score": round(sum(points[a.model] for a in g.members), 4),
                                      "models": g.models} for g in groups},
            "winner": shown[winner.key],
            "tie": [shown[k] for k in tied],
            "weights": {n: round(w, 6) for n, w in self.weights.items()},
            "failed": {n: str(e) for n, e in errors.items()},
        }
        if judge_errors:
            attributes["judge_failed"] = {
                a.model: str(judge_errors[a.key]) for a in answers if a.key in judge_errors
            }
        if self.embedder is not None:
            attributes["by_meaning"] = {"embedder": self.embedder.name,
                                        "similarity": self.similarity}
        return combine(self, best.text, started=started, parts=parts,
                       winner=chosen, failed=failed, attributes=attributes)


def _best_member(group: Group, points: Mapping[str, float]) -> Answer:
    return min(group.members, key=lambda a: (-points[a.model], a.index))


class WeightedConfig(PatternConfig):
    kind: Literal["weighted"] = "weighted"
    models: list[ModelRef] = Field(min_length=1)
    judge: ModelRef | None = None
    rubric: str = DEFAULT_RUBRIC
    #: A ``package.module:function`` taking (request, answer) and returning a float.
    scorer: str | None = None
    weights: dict[str, float] = Field(default_factory=dict)
    #: Where learned weights are kept; relative paths are from the config file's folder.
    weights_file: str | None = None
    eta: float = Field(0.5, gt=0)
    embedder: str | None = None
    similarity: float = Field(0.8, gt=-1, le=1)
    timeout_s: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one_evaluator(self) -> WeightedConfig:
        if (self.judge is None) == (self.scorer is None):
            raise ValueError("give exactly one evaluator: judge: MODEL or scorer: module:function")
        return self


def build(cfg: WeightedConfig, b: BuildContext) -> Weighted:
    from chorus.providers.function import import_callable

    models = [b.model(ref, "models", i) for i, ref in enumerate(cfg.models)]
    judge = b.model(cfg.judge, "judge") if cfg.judge is not None else None
    scorer = import_callable(cfg.scorer) if cfg.scorer else None
    weights_file: Path | None = None
    if cfg.weights_file:
        weights_file = config_path(b, cfg.weights_file)
    embedder = b.embedder(cfg.embedder, "embedder") if cfg.embedder else None
    return Weighted(
        b.name, models, judge=judge, rubric=cfg.rubric, scorer=scorer, weights=cfg.weights,
        weights_file=weights_file, eta=cfg.eta, embedder=embedder,
        similarity=cfg.similarity, timeout_s=cfg.timeout_s,
    )
