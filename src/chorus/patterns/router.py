"""Router: a classifier picks a label, the label's route picks a model, that model answers.

    router = Router("r", KeywordClassifier([Rule("math", keywords=["integral"])]),
                    {"math": gemma, "general": smol}, default="general")

A route is one model, or several candidates chosen by capability, price or measured
latency (``Route``). Abstentions, labels with no route and confidences below
``min_confidence`` take the ``default`` route. The trace records the label, the
classifier's scores, the reason and the chosen model; an LLM classifier's own call is a
child span and its cost counts.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from chorus.config.schema import ModelRef, Node, PatternConfig
from chorus.core.capabilities import missing
from chorus.core.compose import Relay, combine, open_stream
from chorus.core.errors import (
    BudgetExceeded,
    Cancelled,
    CapabilityMissing,
    ChorusError,
    DeadlineExceeded,
    GuardrailViolation,
    StepFailed,
)
from chorus.core.model import Model, StreamEvent, call, error_span
from chorus.core.registry import BuildContext
from chorus.core.types import Completion, Request, Span
from chorus.routing import (
    Classifier,
    Decision,
    LatencyStats,
    LatencyStore,
    Strategy,
    resolve,
    select,
)
from chorus.routing.selection import STRATEGIES, capable, estimate_tokens

__all__ = ["Route", "Router", "RouterConfig", "build"]

#: Errors about the whole request, not one step: they pass through unwrapped.
_REQUEST_LEVEL = (BudgetExceeded, Cancelled, DeadlineExceeded, GuardrailViolation)


@dataclass(frozen=True, slots=True, init=False)
class Route:
    """One or more candidate models for a label, and how to choose among them."""

    candidates: tuple[Model, ...]
    select: Strategy
    require: tuple[str, ...]
    # The choice when only one candidate qualifies: made once, not per call.
    fixed: tuple[Model, str] | None

    def __init__(self, *candidates: Model, select: Strategy = "first",
                 require: Sequence[str] = ()) -> None:
        if not candidates:
            raise ValueError("a route needs at least one candidate model")
        if select not in STRATEGIES:
            raise ValueError(f"select must be one of {', '.join(STRATEGIES)}, got {select!r}")
        fixed = None
        if select == "first" or len(capable(candidates, require)) <= 1:
            fixed = _select(candidates, select, require, None)  # raises when none qualifies
        object.__setattr__(self, "candidates", tuple(candidates))
        object.__setattr__(self, "select", select)
        object.__setattr__(self, "require", tuple(require))
        object.__setattr__(self, "fixed", fixed)


def _select(candidates: Sequence[Model], strategy: Strategy, require: Sequence[str],
            stats: LatencyStore | None,
            request: Request | None = None) -> tuple[Model, str]:
    tokens = estimate_tokens(request) if request is not None else (1, 256)
    return select(candidates, strategy, require=require, stats=stats, tokens=tokens)


class Router(Model):
    """Classify, then call the model of the chosen route."""

    kind = "router"
    can_stream = True
    family = "sequential"

    def __init__(
        self,
        name: str,
        classifier: Classifier,
        routes: Mapping[str, Model | Route],
        *,
        default: str,
        min_confidence: float | None = None,
        stats: LatencyStore | None = None,
    ) -> None:
        super().__init__(name)
        if not routes:
            raise ValueError("a router needs at least one route")
        if default not in routes:
            raise ValueError(f"default route {default!r} is not one of: {', '.join(routes)}")
        missing = [lb for lb in classifier.labels or () if lb not in routes]
        if missing:
            raise ValueError(f"classifier label(s) with no route: {', '.join(missing)}")
        self.classifier = classifier
        self.routes = {lb: r if isinstance(r, Route) else Route(r) for lb, r in routes.items()}
        self.default = default
        self.min_confidence = min_confidence
        self.stats: LatencyStore = stats if stats is not None else LatencyStats()

    def children(self) -> Sequence[Model]:
        seen: dict[int, Model] = {id(m): m for m in self.classifier.models()}
        for route in self.routes.values():
            seen.update((id(m), m) for m in route.candidates)
        return list(seen.values())

    async def _decide(self, request: Request, started: float
                      ) -> tuple[Decision, Model, str, dict[str, Any]]:
        """Classify and pick the model: the decision, the model, the route, the attributes."""
        try:
            decision = await self.classifier.classify(request)
        except _REQUEST_LEVEL:
            raise
        except ChorusError as exc:
            raise self._failed("classifier", exc, started, [],
                               self._classifier_span(exc, started), {}) from exc
        label, reason = resolve(decision, self.routes, self.default, self.min_confidence)
        route = self.routes[label]
        skipped: list[dict[str, str]] = []
        if request.needs:
            route, label, skipped = self._able_route(route, label, request)
        if route.fixed is not None and not skipped:
            model, why = route.fixed
        else:
            able = [m for m in route.candidates if not missing(m, request)]
            model, why = _select(able, route.select, route.require, self.stats, request)
        attrs = {"classifier": self.classifier.type, **decision.attributes(),
                 "route": label, "reason": reason, "model": model.name, "selection": why}
        if skipped:
            attrs["skipped"] = skipped
        return decision, model, label, attrs

    async def complete(self, request: Request) -> Completion:
        started = time.perf_counter()
        decision, model, label, attrs = await self._decide(request, started)
        t0 = time.perf_counter()
        try:
            answer = await call(model, request)
        except _REQUEST_LEVEL:
            raise
        except ChorusError as exc:
            raise self._route_failed(exc, model, label, decision, attrs, started, t0) from exc
        return self._routed(answer, model, decision, attrs, started, t0)

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        """``complete``, with the chosen model's answer streamed piece by piece."""
        started = time.perf_counter()
        decision, model, label, attrs = await self._decide(request, started)
        t0 = time.perf_counter()
        try:
            async with aclosing(open_stream(model, request)) as events:
                relay = Relay(events, model)
                async for piece in relay:
                    yield piece
            answer = relay.final
        except _REQUEST_LEVEL:
            raise
        except ChorusError as exc:
            raise self._route_failed(exc, model, label, decision, attrs, started, t0) from exc
        yield self._routed(answer, model, decision, attrs, started, t0)

    def _route_failed(self, exc: ChorusError, model: Model, label: str, decision: Decision,
                      attrs: dict[str, Any], started: float, t0: float) -> ChorusError:
        """The chosen route failed: counted in its statistics, raised with the trace."""
        self.stats.record(model.name, time.perf_counter() - t0, True)
        return self._failed(f"route {label!r} ({model.name})", exc, started,
                            decision.calls, error_span(model, exc, t0), attrs)

    def _routed(self, answer: Completion, model: Model, decision: Decision,
                attrs: dict[str, Any], started: float, t0: float) -> Completion:
        """The chosen route's answer, counted, as the router's own."""
        self.stats.record(model.name, time.perf_counter() - t0)
        return combine(self, answer.text, started=started, parts=(*decision.calls, answer),
                       winner=answer, attributes=attrs)

    def _able_route(self, route: Route, label: str, request: Request
                    ) -> tuple[Route, str, list[dict[str, str]]]:
        """The route to take when the request needs what some models lack: this one if
        a candidate accepts it, else the default route; the skipped models say why."""
        skipped: list[dict[str, str]] = []
        for name in dict.fromkeys((label, self.default)):
            r = self.routes[name]
            lacking = [(m, missing(m, request)) for m in r.candidates]
            skipped += [{"model": m.name, "route": name,
                         "reason": f"does not accept {', '.join(sorted(lack))}"}
                        for m, lack in lacking if lack]
            if any(not lack for _, lack in lacking):
                return r, name, skipped
        lack = frozenset().union(*(missing(m, request) for m in route.candidates))
        raise CapabilityMissing(self.name, lack)

    def _classifier_span(self, exc: ChorusError, started: float) -> Span:
        models = self.classifier.models()
        if models:
            return error_span(models[0], exc, started)
        return Span(kind="classifier", name=self.classifier.type,
                    latency_s=time.perf_counter() - started, error=str(exc))

    def _failed(self, step: str, exc: ChorusError, started: float,
                parts: Sequence[Completion], failed: Span,
                attrs: dict[str, Any]) -> StepFailed:
        err = StepFailed(self.name, step, exc)
        span = combine(self, "", started=started, parts=parts, failed=[failed],
                       attributes=attrs).trace
        assert span is not None
        span.error = str(err)
        err.trace = span
        return err


# -- YAML -------------------------------------------------------------------------------


class RouteConfig(Node):
    """A route with several candidates: ``{candidates: [a, b], select: cheapest}``."""

    candidates: list[ModelRef] = Field(min_length=1)
    select: Literal["first", "cheapest", "fastest"] = "first"
    #: Capability tags a candidate must have (``capabilities:`` of its models).
    require: list[str] = Field(default_factory=list)


class RouterConfig(PatternConfig):
    kind: Literal["router"] = "router"
    #: ``{type: llm|embedding|keyword|regex|function, ...}``
    classifier: dict[str, Any]
    #: label -> a model name, an inline model, or ``{candidates, select, require}``.
    routes: dict[str, ModelRef] = Field(min_length=1)
    default: str
    min_confidence: float | None = Field(None, ge=0, le=1)
    #: Where the latency statistics for ``select: fastest`` live: absent = this process
    #: only; a store name under ``stores:`` or a store spec = shared (policies.stats).
    stats: str | dict[str, Any] | None = None


def _route(label: str, ref: ModelRef, b: BuildContext) -> Route:
    if not (isinstance(ref, dict) and "candidates" in ref):
        return Route(b.model(ref, "routes", label))
    cfg = b.validate(RouteConfig, ref, "routes", label)
    models = [b.model(m, "routes", label, "candidates", i) for i, m in enumerate(cfg.candidates)]
    try:
        return Route(*models, select=cfg.select, require=cfg.require)
    except ValueError as exc:
        raise b.error(str(exc), "routes", label) from None


def build(cfg: RouterConfig, b: BuildContext) -> Router:
    if cfg.default not in cfg.routes:
        raise b.error(f"{cfg.default!r} is not one of the routes ({', '.join(cfg.routes)})",
                      "default")
    routes = {label: _route(label, ref, b) for label, ref in cfg.routes.items()}
    classifier: Classifier = b.part("classifier", cfg.classifier, "classifier",
                                    args=(list(routes),))
    missing = [lb for lb in classifier.labels or () if lb not in routes]
    if missing:
        raise b.error(f"label(s) with no route: {', '.join(missing)} (add them under routes:)",
                      "classifier")
    stats: LatencyStore | None = None
    if cfg.stats is not None:
        from chorus.policies.stats import StoreStats

        stats = StoreStats(b.store(cfg.stats, "stats"))
    return Router(b.name, classifier, routes, default=cfg.default,
                  min_confidence=cfg.min_confidence, stats=stats)

