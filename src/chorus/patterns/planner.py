"""Planner: a planner model splits the question into steps, executors answer the steps
as a DAG (each step starts as soon as its dependencies are done), and the planner (or a
synthesizer) writes the final answer from the step results.

    Planner("plan", planner=big, executors={"default": small, "lookup": facts})

An unusable plan (unparseable after one repair, empty, cyclic, too long ...) or a failed
planner call does not fail the request: the question goes to the default executor as a
one-step plan, and ``fallback_reason`` in the trace says why. That step's answer is then
the final answer (there is nothing to synthesise).

Tools (``Params.tools``): the planner and the executors of a multi-step plan work
without them (they exchange text); the synthesis, and an executor that answers the
question directly, get the request's tools, so the answer's tool calls come from there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from chorus.config.schema import ModelRef, PatternConfig
from chorus.core import context
from chorus.core.compose import combine, with_trace
from chorus.core.errors import (
    AllModelsFailed,
    ChorusError,
    MalformedResponse,
    ProviderError,
    StepFailed,
)
from chorus.core.model import Model, call, error_span
from chorus.core.registry import BuildContext
from chorus.core.structured import ask_json
from chorus.core.types import Completion, Request, Span
from chorus.patterns import _plan
from chorus.patterns._hierarchy import (
    calls_of,
    error_trace,
    group_span,
    request_is_over,
    with_children,
)
from chorus.patterns._plan import DEFAULT_TYPE, Plan, Step, UnknownType

__all__ = ["Planner", "PlannerConfig", "build"]


@dataclass(slots=True)
class StepResult:
    step: Step
    status: Literal["ok", "failed", "skipped"]
    completion: Completion | None = None
    error: ChorusError | None = None
    reason: str = ""
    span: Span | None = None


class Planner(Model):
    """Plan, run the steps as a DAG, synthesise. See the module docstring."""

    kind = "planner"
    family = "hierarchical"

    def __init__(
        self,
        name: str,
        *,
        planner: Model,
        executors: Mapping[str, Model],
        synthesizer: Model | None = None,
        max_steps: int = 5,
        unknown_type: UnknownType = "default",
        descriptions: Mapping[str, str] | None = None,
        max_prompt_chars: int = 400,
    ) -> None:
        super().__init__(name)
        if DEFAULT_TYPE not in executors:
            raise ValueError(f"executors needs a {DEFAULT_TYPE!r} entry "
                             f"(has: {', '.join(executors) or 'none'})")
        if max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {max_steps}")
        self.planner = planner
        self.executors = dict(executors)
        self.synthesizer = synthesizer or planner
        self.max_steps = max_steps
        self.unknown_type: UnknownType = unknown_type
        self.descriptions = dict(descriptions or {})
        self.schema = _plan.plan_schema(list(self.executors), max_steps,
                                        max_prompt_chars=max_prompt_chars)
        self.plan_tokens = _plan.plan_tokens(max_steps, max_prompt_chars)

    def children(self) -> Sequence[Model]:
        seen: dict[int, Model] = {}
        for m in (self.planner, *self.executors.values(), self.synthesizer):
            seen.setdefault(id(m), m)
        return list(seen.values())

    async def complete(self, request: Request) -> Completion:
        started = time.perf_counter()
        context.check()
        question = request.prompt
        plan, plan_span, parts = await self._plan(request)
        results = await self._run(plan, request)
        parts += [r.completion for r in results.values() if r.completion is not None]
        # Step spans in plan order; ``order`` records the order they finished in.
        step_spans = [s for s in (results[st.id].span for st in plan.steps) if s is not None]
        attributes: dict[str, Any] = {
            "plan": [s.to_dict() for s in plan.steps],
            "levels": [list(lv) for lv in plan.levels],
            "order": [sid for sid, r in results.items() if r.status != "skipped"],
            "fallback_reason": plan.fallback_reason,
            "steps": {sid: r.status for sid, r in results.items()},
        }
        if plan.notes:
            attributes["plan_notes"] = list(plan.notes)
        ok = {sid: r for sid, r in results.items() if r.completion is not None}
        if not ok:
            raise with_trace(self._nothing_succeeded(results),
                          error_trace(self, started, parts, [plan_span, *step_spans], attributes))
        if plan.fallback_reason is not None:
            # The fallback step is the question itself: its answer is the answer.
            winner = next(iter(ok.values())).completion
            assert winner is not None
            out = combine(self, winner.text, started=started, parts=parts, winner=winner,
                          attributes=attributes)
            return with_children(out, [plan_span, *step_spans])
        context.check()
        prompt = _plan.synthesis_prompt(
            question,
            {sid: r.completion.text for sid, r in ok.items() if r.completion is not None},
            {sid: r.reason for sid, r in results.items() if r.completion is None},
        )
        t0 = time.perf_counter()
        try:
            final = await call(self.synthesizer, request.with_prompt(prompt))
        except ChorusError as exc:
            if request_is_over(exc):
                raise
            failed = group_span("synthesis", "synthesis", [],
                                [error_span(self.synthesizer, exc, t0)], error=str(exc))
            raise with_trace(
                StepFailed(self.name, "synthesis", exc),
                error_trace(self, started, parts, [plan_span, *step_spans, failed], attributes),
            ) from exc
        synth_span = group_span("synthesis", "synthesis", [final],
                                attributes={"model": self.synthesizer.name})
        out = combine(self, final.text, started=started, parts=[*parts, final], winner=final,
                      attributes=attributes)
        return with_children(out, [plan_span, *step_spans, synth_span])

    # -- planning ---------------------------------------------------------------------

    async def _plan(self, request: Request) -> tuple[Plan, Span, list[Completion]]:
        question = request.prompt
        types = list(self.executors)
        # Room for the longest plan the schema allows: cut short, it would not parse.
        ask = request.without_tools().with_prompt(
            _plan.planner_prompt(question, types, self.max_steps, self.descriptions)
        ).with_params(max_tokens=self.plan_tokens)
        t0 = time.perf_counter()
        calls: list[Completion] = []
        failed: list[Span] = []
        try:
            value, calls = await ask_json(self.planner, ask, self.schema)
        except MalformedResponse as exc:
            calls = calls_of(exc)
            plan = _plan.one_step_plan(question, f"unparseable plan: {exc}")
        except ProviderError as exc:
            # The planner being down is no reason to fail the request: answer directly.
            failed.append(error_span(self.planner, exc, t0))
            plan = _plan.one_step_plan(question, f"planner failed: {exc}")
        else:
            plan = _plan.make_plan(value, question, types=types, max_steps=self.max_steps,
                                   unknown_type=self.unknown_type)
        span = group_span("plan", "plan", calls, failed, attributes={
            "model": self.planner.name, "calls": len(calls),
            "fallback_reason": plan.fallback_reason,
        })
        return plan, span, calls

    # -- running the DAG --------------------------------------------------------------

    async def _run(self, plan: Plan, request: Request) -> dict[str, StepResult]:
        """Every step as a task that first awaits its dependencies' tasks, so a step
        starts the moment the last of them is done. Results in finishing order."""
        # The fallback step is the question itself: send the request as it came.
        direct = plan.fallback_reason is not None
        finished: dict[str, StepResult] = {}
        tasks: dict[str, asyncio.Task[StepResult]] = {}

        async def run(step: Step) -> StepResult:
            deps = [await tasks[d] for d in step.depends_on]
            result = await self._step(step, deps, request, direct)
            finished[step.id] = result
            return result

        for level in plan.levels:
            for sid in level:
                tasks[sid] = asyncio.create_task(run(plan.step(sid)), name=f"step {sid}")
        try:
            await asyncio.gather(*tasks.values())
        finally:
            pending = [t for t in tasks.values() if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        return finished

    async def _step(self, step: Step, deps: list[StepResult], request: Request,
                    direct: bool) -> StepResult:
        executor = self.executors.get(step.type, self.executors[DEFAULT_TYPE])
        attrs: dict[str, Any] = {"type": step.type, "executor": executor.name,
                                 "depends_on": list(step.depends_on)}
        missing = [d.step.id for d in deps if d.completion is None]
        if missing:
            reason = f"skipped: dependency {', '.join(map(repr, missing))} did not succeed"
            attrs["status"] = "skipped"
            span = group_span("step", step.id, [], attributes=attrs, error=reason)
            return StepResult(step, "skipped", reason=reason, span=span)
        context.check()
        prompt = _plan.step_prompt(
            step, request.prompt,
            {d.step.id: d.completion.text for d in deps if d.completion is not None},
        )
        t0 = time.perf_counter()
        try:
            done = await call(executor, request if direct
                              else request.without_tools().with_prompt(prompt))
        except ChorusError as exc:
            if request_is_over(exc):
                raise
            attrs["status"] = "failed"
            span = group_span("step", step.id, [], [error_span(executor, exc, t0)],
                              attributes=attrs, error=str(exc))
            return StepResult(step, "failed", error=exc, reason=f"failed: {exc}", span=span)
        attrs["status"] = "ok"
        return StepResult(step, "ok", done, span=group_span("step", step.id, [done],
                                                            attributes=attrs))

    # -- reporting --------------------------------------------------------------------

    def _nothing_succeeded(self, results: Mapping[str, StepResult]) -> ChorusError:
        errors = {sid: r.error for sid, r in results.items() if r.error is not None}
        if len(errors) == 1:
            sid, cause = next(iter(errors.items()))
            return StepFailed(self.name, sid, cause)
        return AllModelsFailed(self.name, errors)



class PlannerConfig(PatternConfig):
    kind: Literal["planner"] = "planner"
    #: The model that writes the plan (and the final answer, unless ``synthesizer``).
    planner: ModelRef
    #: Step type -> model; must include ``default``.
    executors: dict[str, ModelRef]
    synthesizer: ModelRef | None = None
    max_steps: int = Field(5, ge=1, le=32)
    #: A step of a type not in ``executors``: run it on ``default``, or reject the plan.
    unknown_type: Literal["default", "invalid"] = "default"
    #: Step type -> what it is good for, shown to the planner.
    descriptions: dict[str, str] = Field(default_factory=dict)
    max_prompt_chars: int = Field(400, ge=16, le=8000)


def build(cfg: PlannerConfig, b: BuildContext) -> Planner:
    if DEFAULT_TYPE not in cfg.executors:
        raise b.error(f"needs a {DEFAULT_TYPE!r} executor", "executors")
    return Planner(
        b.name,
        planner=b.model(cfg.planner, "planner"),
        executors={t: b.model(ref, "executors", t) for t, ref in cfg.executors.items()},
        synthesizer=b.model(cfg.synthesizer, "synthesizer") if cfg.synthesizer else None,
        max_steps=cfg.max_steps,
        unknown_type=cfg.unknown_type,
        descriptions=cfg.descriptions,
        max_prompt_chars=cfg.max_prompt_chars,
    )
