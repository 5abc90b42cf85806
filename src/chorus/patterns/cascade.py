"""Cascade: try the cheapest model first and escalate only when its answer is doubtful.

    Cascade("cascade", [
        Stage(small, AgreementCheck(samples=3, threshold=0.67, temperature=0.7)),
        Stage(medium, JudgeCheck(judge, threshold=7)),
        Stage(large),                      # the last stage's answer is always returned
    ])

After each stage but the last, a confidence check decides: ``accepted`` (stop) or
``escalated`` (go on). A stage whose model fails escalates too. Cost and usage include
every stage and every check call (samples, judge calls), a stage that failed after
spending (a vote whose answers held no label) included.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field

from chorus.config.schema import ModelRef, Node, PatternConfig
from chorus.core.capabilities import missing
from chorus.core.compose import Relay, combine, failed_span, open_stream, raise_if_sent
from chorus.core.errors import (
    AllModelsFailed,
    CapabilityMissing,
    ChorusError,
)
from chorus.core.model import (
    Model,
    StreamEvent,
    call,
    deltas_of,
    error_span,
)
from chorus.core.registry import BuildContext, config_path
from chorus.core.types import Completion, Request, Span
from chorus.patterns._checks import (
    JUDGE_PROMPT,
    AgreementCheck,
    Check,
    FunctionCheck,
    JudgeCheck,
    LearnedCheck,
    LogprobCheck,
    Verdict,
    accept,
    agreement,
    as_confidence,
    escalates_on,
    judge_score,
)
from chorus.patterns.agreement import ExtractKind, extractor
from chorus.providers.function import import_callable
from chorus.routing.acceptance import AcceptanceModel

__all__ = [
    "AgreementCheck",
    "Cascade",
    "CascadeConfig",
    "Check",
    "FunctionCheck",
    "JudgeCheck",
    "LearnedCheck",
    "LogprobCheck",
    "Stage",
    "Verdict",
    "accept",
    "agreement",
    "as_confidence",
    "build",
    "escalates_on",
    "judge_score",
]

# -- the pattern -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stage:
    model: Model
    check: Check | None = None


class Cascade(Model):
    """Stages cheapest first; the first confident answer wins, the last stage's always."""

    kind = "cascade"
    can_stream = True
    family = "sequential"

    def __init__(self, name: str, stages: Sequence[Stage]) -> None:
        super().__init__(name)
        if not stages:
            raise ValueError("a cascade needs at least one stage")
        for i, stage in enumerate(stages[:-1]):
            if stage.check is None:
                raise ValueError(f"stage {i} needs a check (only the last stage has none)")
        if stages[-1].check is not None:
            raise ValueError("the last stage's answer is returned unconditionally: "
                             "remove its check")
        self.stages = list(stages)

    def children(self) -> Sequence[Model]:
        out: list[Model] = []
        for s in self.stages:
            out.append(s.model)
            out.extend(s.check.models() if s.check else ())
        return tuple(dict.fromkeys(out))

    async def complete(self, request: Request) -> Completion:
        async with aclosing(self._run(request, stream=False)) as events:
            async for event in events:
                if isinstance(event, Completion):
                    return event
        raise AssertionError("unreachable: a cascade's run ends with its answer")

    def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        """``complete``, streamed: an earlier stage's answer is sent whole once its check
        accepts it; the last stage's (which nothing checks) streams piece by piece."""
        return self._run(request, stream=True)

    async def _run(self, request: Request, *, stream: bool) -> AsyncGenerator[StreamEvent, None]:
        started = time.perf_counter()
        parts: list[Completion] = []
        failed: list[Span] = []
        records: list[dict[str, Any]] = []
        errors: dict[str, ChorusError] = {}
        answered: list[tuple[int, Completion]] = []
        sent = False
        for i, stage in enumerate(self.stages):
            record: dict[str, Any] = {"stage": i, "model": stage.model.name,
                                      "check": stage.check.name if stage.check else None}
            records.append(record)
            lack = missing(stage.model, request)
            if lack:
                errors[stage.model.name] = CapabilityMissing(stage.model.name, lack)
                record.update(decision="skipped", note=str(errors[stage.model.name]))
                continue
            t0 = time.perf_counter()
            try:
                if stage.check is None and stream:
                    async with aclosing(open_stream(stage.model, request)) as events:
                        relay = Relay(events, stage.model)
                        try:
                            async for piece in relay:
                                yield piece
                        finally:
                            sent = relay.sent
                    answer = relay.final
                    verdict = Verdict(answer, None, [answer], note="last stage")
                elif stage.check is None:
                    answer = await call(stage.model, request)
                    verdict = Verdict(answer, None, [answer], note="last stage")
                else:
                    verdict = await stage.check.run(stage.model, request)
            except ChorusError as exc:
                if not escalates_on(exc):
                    raise
                raise_if_sent(exc, sent)
                failed.append(error_span(stage.model, exc, t0))
                errors[stage.model.name] = exc
                record.update(decision="failed", error=str(exc))
                continue
            parts.extend(verdict.calls)
            failed.extend(verdict.failed)
            answered.append((i, verdict.answer))
            last = stage.check is None
            ok = last or (stage.check is not None and
                          accept(verdict.confidence, stage.check.threshold))
            record.update(confidence=verdict.confidence,
                          threshold=stage.check.threshold if stage.check else None,
                          decision="accepted" if ok else "escalated", note=verdict.note)
            if ok:
                if stream and not sent:
                    for piece in deltas_of(verdict.answer):
                        yield piece
                yield self._answer(i, verdict.answer, started, parts, failed, records)
                return
        if not answered:
            err = AllModelsFailed(self.name, errors)
            spans = [p.trace for p in parts if p.trace is not None]
            err.trace = failed_span(self, err, [*spans, *failed])
            raise err
        # The last stage failed: the latest (most capable) stage that answered is best left.
        i, answer = answered[-1]
        records[i]["decision"] = "accepted"
        records[i]["note"] = f"{records[i].get('note') or ''} (used: the last stage failed)"
        if stream:
            for piece in deltas_of(answer):
                yield piece
        yield self._answer(i, answer, started, parts, failed, records)

    def _answer(self, i: int, answer: Completion, started: float, parts: list[Completion],
                failed: list[Span], records: list[dict[str, Any]]) -> Completion:
        return combine(self, answer.text, started=started, parts=parts, winner=answer,
                       failed=failed, attributes={"stages": records, "accepted_stage": i,
                                                  "answered_by": self.stages[i].model.name})


# -- YAML --------------------------------------------------------------------------------


class AgreementConfig(Node):
    type: Literal["agreement"]
    samples: int = Field(3, ge=2, le=16)
    threshold: float = Field(0.67, ge=0, le=1)
    #: Sampling temperature for the samples (they only differ when it is above 0).
    temperature: float | None = Field(None, ge=0)


class JudgeConfig(Node):
    type: Literal["judge"]
    judge: ModelRef
    threshold: float = Field(7.0, ge=0, le=10)
    #: The judge's prompt; ``{question}`` and ``{answer}`` are filled in.
    prompt: str = JUDGE_PROMPT


class LogprobConfig(Node):
    type: Literal["logprob"]
    threshold: float = Field(-1.0, le=0)


class FunctionCheckConfig(Node):
    type: Literal["function"]
    #: ``package.module:function`` taking (request, completion), returning bool or float.
    function: str
    threshold: float = 0.5


class LearnedCheckConfig(Node):
    type: Literal["learned"]
    #: The folder of a fitted acceptance model (``chorus tune`` writes them), relative to
    #: the config file.
    path: str
    threshold: float = Field(0.5, ge=0, le=1)
    #: What counts as an answer (as in ``vote``); none: any non-empty text.
    extract: ExtractKind | None = None
    embedder: str | dict[str, Any] | None = None


CheckConfig = Annotated[
    AgreementConfig | JudgeConfig | LogprobConfig | FunctionCheckConfig | LearnedCheckConfig,
    Field(discriminator="type"),
]


class StageConfig(Node):
    model: ModelRef
    check: CheckConfig | None = None


class CascadeConfig(PatternConfig):
    kind: Literal["cascade"] = "cascade"
    stages: list[StageConfig] = Field(min_length=1)


def _check(cfg: CheckConfig, b: BuildContext, i: int) -> Check:
    if isinstance(cfg, AgreementConfig):
        return AgreementCheck(cfg.samples, cfg.threshold, temperature=cfg.temperature)
    if isinstance(cfg, JudgeConfig):
        judge = b.model(cfg.judge, "stages", i, "check", "judge")
        return JudgeCheck(judge, cfg.threshold, prompt=cfg.prompt)
    if isinstance(cfg, LogprobConfig):
        return LogprobCheck(cfg.threshold)
    if isinstance(cfg, LearnedCheckConfig):
        try:
            model = AcceptanceModel.load(config_path(b, cfg.path))
        except ValueError as exc:
            raise b.error(str(exc), "stages", i, "check", "path") from None
        return LearnedCheck(model, b.embedder(cfg.embedder, "stages", i, "check", "embedder"),
                            cfg.threshold, extract=extractor(cfg.extract))
    return FunctionCheck(import_callable(cfg.function), cfg.threshold)


def build(cfg: CascadeConfig, b: BuildContext) -> Cascade:
    stages = []
    last = len(cfg.stages) - 1
    for i, sc in enumerate(cfg.stages):
        if i < last and sc.check is None:
            raise b.error("every stage but the last needs a check", "stages", i)
        if i == last and sc.check is not None:
            raise b.error("the last stage's answer is returned unconditionally: remove its "
                          "check", "stages", i, "check")
        check = _check(sc.check, b, i) if sc.check is not None else None
        stages.append(Stage(b.model(sc.model, "stages", i, "model"), check))
    return Cascade(b.name, stages)
