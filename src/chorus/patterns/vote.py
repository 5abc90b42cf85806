"""Vote: the majority answer of several models, or of several samples of one model.

    Vote("v", [a, b, c], extract="label", labels=["positive", "negative"])
    Vote("v", model=a, samples=5)          # temperature > 0, one seed per sample

Answers are normalised (case, spaces, wrapping punctuation and quotes) or, with
``extract``, reduced to the part that counts: a choice letter A-J, a number, yes/no,
one of ``labels``, or the first group of a ``pattern``. With ``by_meaning`` free-text
answers are grouped by the cosine similarity of their embeddings, and the answer is
the medoid of the largest group. Ties go to the ``tie_break`` rule: ``order`` (the
earliest child), ``weight`` (per-child ``weights``) or ``cheapest`` (lowest cost).
With ``by="weight"`` each answer counts its child's weight instead of one vote: a
weighted majority, with weights such as the log-odds of each model's recorded accuracy
(``chorus outcomes vote`` learns them from an outcome table), or, with ``weights_by``,
weights that depend on the question (``routing.vote_weights``: the prompt's region of
the embedding space picks a row of weights; ``chorus tune`` fits them).
Failed children, and answers with no label to extract, are recorded and left out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, get_args

from pydantic import Field, model_validator

from chorus.config.schema import ModelRef, Node, PatternConfig
from chorus.core.compose import combine, failed_span
from chorus.core.errors import AllModelsFailed, ConfigError
from chorus.core.model import Model
from chorus.core.registry import BuildContext, config_path
from chorus.core.types import Completion, Request
from chorus.embeddings import Embedder
from chorus.patterns._concurrent import gather
from chorus.patterns.agreement import (
    TOOL_KEY,
    ExtractKind,
    Group,
    TieBreak,
    collect,
    display_labels,
    extractor,
    group_answers,
    pick,
    tally,
)
from chorus.routing.vote_weights import RegionWeights

__all__ = ["Vote", "VoteBy", "VoteConfig", "build"]

#: What an answer's group is ranked by: its number of votes, or its children's weights.
VoteBy = Literal["count", "weight"]
_BY: dict[str, Callable[[Group], float]] = {"count": lambda g: g.count,
                                            "weight": lambda g: g.weight}


class Vote(Model):
    kind = "vote"
    family = "parallel"

    def __init__(
        self,
        name: str,
        models: Sequence[Model] = (),
        *,
        model: Model | None = None,
        samples: int = 1,
        temperature: float = 0.8,
        extract: ExtractKind | None = None,
        labels: Sequence[str] = (),
        pattern: str | None = None,
        by_meaning: bool = False,
        embedder: Embedder | None = None,
        similarity: float = 0.8,
        tie_break: TieBreak = "order",
        weights: Mapping[str, float] | None = None,
        by: VoteBy = "count",
        timeout_s: float | None = None,
        region_weights: RegionWeights | None = None,
        weights_embedder: Embedder | None = None,
    ) -> None:
        super().__init__(name)
        if bool(models) == (model is not None):
            raise ValueError("vote needs either models (a list) or model (with samples)")
        if model is not None and samples < 2:
            raise ValueError("vote over one model needs samples >= 2")
        if models and samples != 1:
            raise ValueError("samples applies to a single model; give model: instead of models:")
        if by_meaning and embedder is None:
            raise ValueError("by_meaning needs an embedder")
        if temperature <= 0 and model is not None:
            raise ValueError("samples need temperature > 0, or every sample is the same")
        self.models: list[Model] = list(models) if model is None else [model] * samples
        self.samples = samples if model is not None else 1
        self.temperature = temperature
        self.extract_kind = extract
        self.extract = extractor(extract, labels=labels, pattern=pattern)
        self.embedder = embedder if by_meaning else None
        self.similarity = similarity
        self.tie_break = tie_break
        if tie_break not in get_args(TieBreak):
            raise ValueError(f"tie_break must be one of {', '.join(get_args(TieBreak))}")
        self.weights = dict(weights or {})
        if by not in get_args(VoteBy):
            raise ValueError(f"by must be one of {', '.join(get_args(VoteBy))}")
        if any(w <= 0 for w in self.weights.values()):
            raise ValueError("weights must be > 0")
        self.by = by
        self.timeout_s = timeout_s
        if self.samples > 1:
            self.names = [f"{self.models[0].name}[{i}]" for i in range(self.samples)]
        else:
            self.names = [m.name for m in self.models]
            if len(set(self.names)) != len(self.names):
                raise ValueError(f"vote children must have distinct names: {self.names}")
        unknown = set(self.weights) - set(self.names)
        if unknown:
            raise ValueError(f"weights name unknown children: {', '.join(sorted(unknown))}")
        self.region_weights = region_weights
        self.weights_embedder = weights_embedder
        if region_weights is not None:
            if by != "weight":
                raise ValueError("weights_by needs by: weight")
            if self.weights:
                raise ValueError("give weights or weights_by, not both")
            if weights_embedder is None:
                raise ValueError("weights_by needs an embedder")
            if sorted(region_weights.members) != sorted(self.names):
                raise ValueError(f"the region weights are for {', '.join(region_weights.members)}"
                                 f", not this vote's {', '.join(self.names)}")

    def children(self) -> Sequence[Model]:
        return self.models[:1] if self.samples > 1 else self.models

    def requests(self, request: Request) -> list[Request]:
        """One request per child; samples get distinct seeds and a temperature > 0."""
        if self.samples == 1:
            return [request] * len(self.models)
        seed = request.params.get("seed", None)
        base = seed if isinstance(seed, int) else 0
        temp = request.params.get("temperature", None)
        temperature = temp if isinstance(temp, int | float) and temp > 0 else self.temperature
        return [request.with_params(seed=base + i, temperature=temperature)
                for i in range(self.samples)]

    async def complete(self, request: Request) -> Completion:
        started = time.perf_counter()
        outcomes = await gather(self.models, self.requests(request), timeout_s=self.timeout_s)
        parts = [o.completion for o in outcomes if o.completion is not None]
        failed = [o.span for o in outcomes if o.completion is None]
        weights, region = await self._weights(request)
        answers, errors = collect(outcomes, self.names, self.extract, weights)
        if not answers:
            err = AllModelsFailed(self.name, errors)
            err.trace = failed_span(self, err, [o.span for o in outcomes])
            raise err
        groups = await group_answers(answers, self.embedder, self.similarity, request.prompt)
        bonus = self._bonus(request, groups)
        score = _BY[self.by] if not bonus else (lambda g: g.weight + bonus[g.key])
        winner, tied = pick(groups, self.tie_break, score)
        rep = winner.representative
        chosen = outcomes[rep.index].completion
        assert chosen is not None  # every answer comes from a successful outcome
        text = winner.key if self.extract_kind else rep.text
        if winner.key.startswith(TOOL_KEY):  # the calls are the answer; keep its words
            text = chosen.text
        shown = display_labels(groups)
        attributes: dict[str, Any] = {
            "tally": tally(groups, len(answers)),
            "winner": shown[winner.key],
            "votes": len(answers),
            "tie": [shown[k] for k in tied],
            "tie_break": self.tie_break,
            "by": self.by,
            "failed": {name: str(e) for name, e in errors.items()},
        }
        if region is not None:
            attributes["region"] = region
            attributes["weights"] = {k: round(v, 4) for k, v in weights.items()}
        if bonus:
            attributes["option_bonus"] = {shown[k]: round(v, 4) for k, v in bonus.items()}
        if self.samples > 1:
            attributes["samples"] = self.samples
            attributes["seeds"] = [r.params.get("seed", None) for r in self.requests(request)]
        if self.extract_kind:
            attributes["extract"] = self.extract_kind
        if self.embedder is not None:
            attributes["by_meaning"] = {"embedder": self.embedder.name,
                                        "similarity": self.similarity}
        return combine(self, text, started=started, parts=parts, winner=chosen,
                       failed=failed, attributes=attributes)

    def _bonus(self, request: Request, groups: Sequence[Group]) -> dict[str, float]:
        """What each group's answer adds to its weight, where the region weights weigh
        where an answer stands among the options the prompt lists ({} otherwise)."""
        if self.region_weights is None or self.region_weights.choice is None:
            return {}
        return {g.key: self.region_weights.bonus(request.prompt, g.key) for g in groups}

    async def _weights(self, request: Request) -> tuple[Mapping[str, float], int | None]:
        """The children's weights for this request, and its region when they depend on it."""
        if self.region_weights is None or self.weights_embedder is None:
            return self.weights, None
        vector = await self.weights_embedder.embed([request.prompt])
        if vector.shape[1] != self.region_weights.dims:
            raise ConfigError(f"{self.name}: the region weights were fitted on "
                              f"{self.region_weights.dims}-dim embeddings; embedder "
                              f"{self.weights_embedder.name!r} gives {vector.shape[1]}")
        return (self.region_weights.weights(vector),
                int(self.region_weights.region(vector)[0]))


class RegionWeightsConfig(Node):
    #: The folder of fitted region weights (``chorus tune`` writes them), relative to the
    #: config file.
    path: str
    embedder: str | dict[str, Any] | None = None


class VoteConfig(PatternConfig):
    kind: Literal["vote"] = "vote"
    models: list[ModelRef] = Field(default_factory=list)
    model: ModelRef | None = None
    samples: int = Field(1, ge=1, le=64)
    temperature: float = Field(0.8, ge=0, le=2)
    extract: ExtractKind | None = None
    labels: list[str] = Field(default_factory=list)
    pattern: str | None = None
    by_meaning: bool = False
    embedder: str | None = None
    similarity: float = Field(0.8, gt=-1, le=1)
    tie_break: TieBreak = "order"
    weights: dict[str, float] = Field(default_factory=dict)
    by: VoteBy = "count"
    timeout_s: float | None = Field(None, gt=0)
    weights_by: RegionWeightsConfig | None = None

    @model_validator(mode="after")
    def _one_source(self) -> VoteConfig:
        if bool(self.models) == (self.model is not None):
            raise ValueError("give either models: [a, b, ...] or model: a with samples: N")
        return self


def build(cfg: VoteConfig, b: BuildContext) -> Vote:
    models = [b.model(ref, "models", i) for i, ref in enumerate(cfg.models)]
    model = b.model(cfg.model, "model") if cfg.model is not None else None
    embedder = b.embedder(cfg.embedder, "embedder") if cfg.by_meaning else None
    region: RegionWeights | None = None
    weights_embedder = None
    if cfg.weights_by is not None:
        try:
            region = RegionWeights.load(config_path(b, cfg.weights_by.path))
        except ValueError as exc:
            raise b.error(str(exc), "weights_by", "path") from None
        weights_embedder = b.embedder(cfg.weights_by.embedder, "weights_by", "embedder")
    try:
        return Vote(
            b.name, models, model=model, samples=cfg.samples, temperature=cfg.temperature,
            extract=cfg.extract, labels=cfg.labels, pattern=cfg.pattern,
            by_meaning=cfg.by_meaning, embedder=embedder, similarity=cfg.similarity,
            tie_break=cfg.tie_break, weights=cfg.weights, by=cfg.by, timeout_s=cfg.timeout_s,
            region_weights=region, weights_embedder=weights_embedder,
        )
    except ValueError as exc:
        if region is None:
            raise
        raise b.error(str(exc), "weights_by") from None
