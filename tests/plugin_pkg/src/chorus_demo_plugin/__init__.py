"""A chorus plugin written outside the package, from public names only.

It adds, through its ``chorus.plugins`` entry point alone:

- a provider ``reverse`` (answers with the prompt reversed),
- a pattern ``longest`` (asks every model, answers with the longest answer),
- a router classifier ``length`` (``short`` or ``long`` by the prompt's length),
- a guardrail check ``no_digits`` (blocks digits in the input),
- a store ``counting`` (the in-memory store, counting the writes it takes).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from chorus.config import ModelRef, Node, PatternConfig, ProviderConfig
from chorus.core import (
    AllModelsFailed,
    BuildContext,
    ChorusError,
    Completion,
    Model,
    Registry,
    Request,
    Usage,
    call,
    combine,
    error_span,
    failed_span,
    with_trace,
)
from chorus.policies.guardrails import Check, CheckConfig, Finding, Stage
from chorus.providers import Provider, common_kwargs
from chorus.routing import Classifier, Decision
from chorus.stores import MemoryStore, Store

__all__ = ["CountingStore", "LengthClassifier", "Longest", "NoDigits", "Reverse", "register"]


# -- a provider ---------------------------------------------------------------------------


class Reverse(Provider):
    provider = "reverse"

    async def complete(self, request: Request) -> Completion:
        started = time.perf_counter()
        request = self.prepare(request)
        text = request.prompt[::-1]
        return self.finish(text, Usage(len(request.prompt.split()), len(text.split())), started)


class ReverseConfig(ProviderConfig):
    provider: Literal["reverse"] = "reverse"


def build_reverse(cfg: ReverseConfig, b: BuildContext) -> Reverse:
    return Reverse(b.name, **common_kwargs(cfg))


# -- a pattern ----------------------------------------------------------------------------


class Longest(Model):
    """Asks every model at once; the longest answer wins."""

    kind = "longest"
    family = "parallel"

    def __init__(self, name: str, models: Sequence[Model]) -> None:
        super().__init__(name)
        self.models = list(models)

    def children(self) -> Sequence[Model]:
        return self.models

    async def complete(self, request: Request) -> Completion:
        started = time.perf_counter()
        results = await asyncio.gather(*(call(m, request) for m in self.models),
                                       return_exceptions=True)
        parts = [r for r in results if isinstance(r, Completion)]
        errors = {m.name: r for m, r in zip(self.models, results, strict=True)
                  if isinstance(r, ChorusError)}
        failed = [error_span(m, errors[m.name], started) for m in self.models
                  if m.name in errors]
        if not parts:
            err = AllModelsFailed(self.name, errors)
            raise with_trace(err, failed_span(self, err, failed))
        best = max(parts, key=lambda c: len(c.text))
        return combine(self, best.text, started=started, parts=parts, winner=best,
                       failed=failed, attributes={"lengths": [len(p.text) for p in parts]})


class LongestConfig(PatternConfig):
    kind: Literal["longest"] = "longest"
    models: list[ModelRef] = Field(min_length=1)


def build_longest(cfg: LongestConfig, b: BuildContext) -> Longest:
    return Longest(b.name, [b.model(m, "models", i) for i, m in enumerate(cfg.models)])


# -- a router classifier ------------------------------------------------------------------


class LengthClassifier(Classifier):
    type = "length"
    labels = ("short", "long")

    def __init__(self, words: int) -> None:
        self.words = words

    async def classify(self, request: Request) -> Decision:
        n = len(request.prompt.split())
        label = "short" if n <= self.words else "long"
        return Decision(label, f"{n} words (short up to {self.words})")


class LengthConfig(Node):
    type: Literal["length"]
    words: int = Field(5, ge=1)


def build_length(cfg: LengthConfig, b: BuildContext, routes: list[str]) -> LengthClassifier:
    missing = {"short", "long"} - set(routes)
    if missing:
        raise b.error(f"the length classifier needs routes {sorted(missing)}")
    return LengthClassifier(cfg.words)


# -- a guardrail check --------------------------------------------------------------------


class NoDigits(Check):
    async def run(self, subject: Any) -> Finding | None:
        text = subject if isinstance(subject, str) else subject.prompt
        digits = [i for i, ch in enumerate(text) if ch.isdigit()]
        if not digits:
            return None
        return Finding(f"{len(digits)} digit(s)", span=(digits[0], digits[0] + 1))


class NoDigitsConfig(CheckConfig):
    type: Literal["no_digits"]


def build_no_digits(cfg: NoDigitsConfig, b: BuildContext, stage: Stage) -> NoDigits:
    return NoDigits(cfg.label(), **cfg.common(stage))


# -- a store ------------------------------------------------------------------------------


class CountingStore(MemoryStore):
    """The in-memory store, counting the writes it takes."""

    name = "counting"

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        self.writes += 1
        await super().set(key, value, ttl_s)


def build_counting(spec: dict[str, Any]) -> Store:
    unknown = set(spec) - {"kind"}
    if unknown:
        raise ValueError(f"unknown key(s) for a counting store: {', '.join(sorted(unknown))}")
    return CountingStore()


def register(registry: Registry) -> None:
    registry.provider("reverse", ReverseConfig, build_reverse, "the prompt, reversed")
    registry.pattern("longest", LongestConfig, build_longest, "the longest answer wins")
    registry.classifier("length", LengthConfig, build_length, "short or long by word count")
    registry.check("no_digits", NoDigitsConfig, build_no_digits, "no digits in the input")
    registry.store("counting", build_counting, "memory, counting writes")
