"""Consensus: accept the models' answer when enough of them agree, else escalate.

    Consensus("c", [a, b], threshold=0.66, escalate_to=big)

Every model answers; answers are grouped exactly (normalised, or by an ``extract``
rule as in ``vote``) or by meaning. When the largest group holds at least
``threshold`` of the models asked (a failed model counts as not agreeing), its
answer wins. Otherwise the request goes to ``escalate_to`` and the disagreement
(groups and shares) is recorded in the trace with ``escalated: true``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from chorus.config.schema import ModelRef, PatternConfig
from chorus.core.compose import combine, failed_span
from chorus.core.errors import ChorusError, StepFailed
from chorus.core.model import Model, call, error_span
from chorus.core.registry import BuildContext
from chorus.core.types import Completion, Request
from chorus.embeddings import Embedder
from chorus.patterns._concurrent import gather
from chorus.patterns.agreement import (
    TOOL_KEY,
    ExtractKind,
    Group,
    collect,
    display_labels,
    extractor,
    group_answers,
    pick,
    tally,
)

__all__ = ["Consensus", "ConsensusConfig", "agreement", "build"]


def agreement(groups: Sequence[Group], asked: int, threshold: float) -> tuple[Group | None, float]:
    """The group that reaches ``threshold`` of ``asked`` models (None when none does),
    and the largest share any group reached."""
    if not groups or asked <= 0:
        return None, 0.0
    best, _ = pick(groups, "order")
    share = best.count / asked
    return (best if share >= threshold - 1e-9 else None), share


class Consensus(Model):
    kind = "consensus"
    family = "ensemble"

    def __init__(
        self,
        name: str,
        models: Sequence[Model],
        *,
        escalate_to: Model,
        threshold: float = 0.66,
        extract: ExtractKind | None = None,
        labels: Sequence[str] = (),
        pattern: str | None = None,
        by_meaning: bool = False,
        embedder: Embedder | None = None,
        similarity: float = 0.8,
        timeout_s: float | None = None,
    ) -> None:
        super().__init__(name)
        if len(models) < 2:
            raise ValueError("consensus needs at least two models")
        if not 0 < threshold <= 1:
            raise ValueError("threshold is a share of the models: 0 < threshold <= 1")
        if by_meaning and embedder is None:
            raise ValueError("by_meaning needs an embedder")
        self.models = list(models)
        self.names = [m.name for m in self.models]
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"consensus models must have distinct names: {self.names}")
        self.escalate_to = escalate_to
        self.threshold = threshold
        self.extract_kind = extract
        self.extract = extractor(extract, labels=labels, pattern=pattern)
        self.embedder = embedder if by_meaning else None
        self.similarity = similarity
        self.timeout_s = timeout_s

    def children(self) -> Sequence[Model]:
        return list(dict.fromkeys([*self.models, self.escalate_to]))

    async def complete(self, request: Request) -> Completion:
        started = time.perf_counter()
        outcomes = await gather(self.models, request, timeout_s=self.timeout_s)
        parts = [o.completion for o in outcomes if o.completion is not None]
        failed = [o.span for o in outcomes if o.completion is None]
        answers, errors = collect(outcomes, self.names, self.extract)
        groups = await group_answers(answers, self.embedder, self.similarity, request.prompt)
        winner, share = agreement(groups, len(self.models), self.threshold)
        attributes: dict[str, Any] = {
            "groups": tally(groups, len(self.models)),
            "threshold": self.threshold,
            "share": round(share, 4),
            "failed": {name: str(e) for name, e in errors.items()},
        }
        if self.extract_kind:
            attributes["extract"] = self.extract_kind
        if self.embedder is not None:
            attributes["by_meaning"] = {"embedder": self.embedder.name,
                                        "similarity": self.similarity}
        if winner is not None:
            rep = winner.representative
            chosen = outcomes[rep.index].completion
            assert chosen is not None  # every answer comes from a successful outcome
            text = winner.key if self.extract_kind else rep.text
            if winner.key.startswith(TOOL_KEY):
                text = rep.text
            attributes.update(escalated=False, winner=display_labels(groups)[winner.key])
            return combine(self, text, started=started, parts=parts, winner=chosen,
                           failed=failed, attributes=attributes)
        attributes.update(escalated=True, escalated_to=self.escalate_to.name)
        esc_started = time.perf_counter()
        try:
            final = await call(self.escalate_to, request)
        except ChorusError as exc:
            err = StepFailed(self.name, f"escalate to {self.escalate_to.name}", exc)
            spans = [o.span for o in outcomes]
            spans.append(error_span(self.escalate_to, exc, esc_started))
            err.trace = failed_span(self, err, spans)
            raise err from exc
        return combine(self, final.text, started=started, parts=[*parts, final], winner=final,
                       failed=failed, attributes=attributes)


class ConsensusConfig(PatternConfig):
    kind: Literal["consensus"] = "consensus"
    models: list[ModelRef] = Field(min_length=2)
    escalate_to: ModelRef
    threshold: float = Field(0.66, gt=0, le=1)
    extract: ExtractKind | None = None
    labels: list[str] = Field(default_factory=list)
    pattern: str | None = None
    by_meaning: bool = False
    embedder: str | None = None
    similarity: float = Field(0.8, gt=-1, le=1)
    timeout_s: float | None = Field(None, gt=0)


def build(cfg: ConsensusConfig, b: BuildContext) -> Consensus:
    models = [b.model(ref, "models", i) for i, ref in enumerate(cfg.models)]
    escalate_to = b.model(cfg.escalate_to, "escalate_to")
    embedder = b.embedder(cfg.embedder, "embedder") if cfg.by_meaning else None
    return Consensus(
        b.name, models, escalate_to=escalate_to, threshold=cfg.threshold,
        extract=cfg.extract, labels=cfg.labels, pattern=cfg.pattern,
        by_meaning=cfg.by_meaning, embedder=embedder, similarity=cfg.similarity,
        timeout_s=cfg.timeout_s,
    )
