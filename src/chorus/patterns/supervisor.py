"""Supervisor: a supervisor model hands tasks to named workers, the workers answer at
the same time, and the supervisor reviews their combined result; a rejected result goes
back to the workers with the feedback, for at most ``max_rounds`` rounds of work in all.

    Supervisor("team", supervisor=big, workers={"writer": a, "checker": b}, max_rounds=2)

The final answer: one worker's answer as it is; from several, the supervisor writes the
answer from their results (one more call), or with ``synthesize=False`` they are given
as ``[worker]`` sections. Assignments that cannot be
used (bad JSON after one repair, none valid, a failed supervisor call) fall back to
giving the whole question to the first worker, with ``fallback_reason`` in the trace. A
review that cannot be read ends the loop, keeping the result it was about.

Tools (``Params.tools``): assigning, the workers' tasks and the reviews work without
them (they exchange text); the final synthesis gets the request's tools, so the
answer's tool calls come from it.
"""

from __future__ import annotations

import json
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
from chorus.core.types import Completion, Request, Span, Usage
from chorus.patterns._concurrent import gather
from chorus.patterns._hierarchy import (
    calls_of,
    error_trace,
    group_span,
    with_children,
)

__all__ = [
    "Assignment",
    "Supervisor",
    "SupervisorConfig",
    "assignment_schema",
    "build",
    "combine_outputs",
    "parse_assignments",
    "parse_review",
    "review_schema",
]


@dataclass(frozen=True, slots=True)
class Assignment:
    worker: str
    task: str

    def to_dict(self) -> dict[str, str]:
        return {"worker": self.worker, "task": self.task}


# -- I/O-free parts ----------------------------------------------------------------------


def assignment_schema(workers: Sequence[str], max_assignments: int,
                      max_task_chars: int = 400) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"assignments": {
            "type": "array", "minItems": 1, "maxItems": max_assignments,
            "items": {
                "type": "object",
                "properties": {
                    "worker": {"type": "string", "enum": list(workers)},
                    "task": {"type": "string", "minLength": min(8, max_task_chars),
                             "maxLength": max_task_chars},
                },
                "required": ["worker", "task"],
                "additionalProperties": False,
            },
        }},
        "required": ["assignments"],
        "additionalProperties": False,
    }


def review_schema(max_feedback_chars: int = 400) -> dict[str, Any]:
    """The review's form: the feedback first (a reason, so the verdict follows from it,
    never an empty "..."), then the verdict."""
    return {
        "type": "object",
        "properties": {
            "feedback": {"type": "string", "minLength": min(12, max_feedback_chars),
                         "maxLength": max_feedback_chars},
            "approved": {"type": "boolean"},
        },
        "required": ["feedback", "approved"],
        "additionalProperties": False,
    }


def parse_assignments(value: Any, workers: Sequence[str],
                      max_assignments: int) -> tuple[list[Assignment], list[str]]:
    """The usable assignments in ``value`` and notes on what was dropped; raises
    ValueError when none is usable or there are more than ``max_assignments``."""
    raw = value.get("assignments") if isinstance(value, Mapping) else value
    if not isinstance(raw, list) or not raw:
        raise ValueError("no 'assignments' list in the answer")
    if len(raw) > max_assignments:
        raise ValueError(f"{len(raw)} assignments, more than max_assignments={max_assignments}")
    out: list[Assignment] = []
    notes: list[str] = []
    for n, item in enumerate(raw, 1):
        worker = item.get("worker") if isinstance(item, Mapping) else None
        task = item.get("task") if isinstance(item, Mapping) else None
        if not isinstance(worker, str) or worker not in workers:
            notes.append(f"assignment {n} dropped: unknown worker {worker!r}")
        elif not isinstance(task, str) or not task.strip():
            notes.append(f"assignment {n} dropped: no task")
        elif (a := Assignment(worker, task.strip())) in out:
            notes.append(f"assignment {n} dropped: repeats an earlier one")
        else:
            out.append(a)
    if not out:
        raise ValueError(f"no usable assignment ({'; '.join(notes)})")
    return out, notes


def parse_review(value: Any) -> tuple[bool, str]:
    """``(approved, feedback)`` from a review; raises ValueError when it has no verdict."""
    if not isinstance(value, Mapping):
        raise ValueError("the review is not a JSON object")
    verdict = value.get("approved")
    if isinstance(verdict, str) and verdict.strip().lower() in ("true", "yes", "approved"):
        verdict = True
    elif isinstance(verdict, str) and verdict.strip().lower() in ("false", "no", "rejected"):
        verdict = False
    if not isinstance(verdict, bool):
        raise ValueError(f"the review has no true/false 'approved' (got {verdict!r})")
    feedback = value.get("feedback")
    return verdict, feedback.strip() if isinstance(feedback, str) else ""


def combine_outputs(outputs: Sequence[tuple[str, str]], labelled: bool | None = None) -> str:
    """The workers' answers as one text: in ``[worker]`` sections (``[worker 2]`` for a
    worker's second task), or (by default, for a lone answer) as it is."""
    if not (len(outputs) > 1 if labelled is None else labelled):
        return outputs[0][1]
    seen: dict[str, int] = {}
    sections = []
    for worker, text in outputs:
        seen[worker] = seen.get(worker, 0) + 1
        label = worker if seen[worker] == 1 else f"{worker} {seen[worker]}"
        sections.append(f"[{label}]\n{text}")
    return "\n\n".join(sections)


def assign_prompt(question: str, workers: Sequence[str], descriptions: Mapping[str, str],
                  max_assignments: int) -> str:
    listed = "\n".join(f"- {w}: {descriptions[w]}" if w in descriptions else f"- {w}"
                       for w in workers)
    # A worked example in the answer's own form (small models copy a "..." placeholder).
    example = json.dumps({"assignments": [
        {"worker": w, "task": f"Who wrote Hamlet? ({descriptions.get(w, 'help answer it')})"}
        for w in workers[:max_assignments]]})
    return (f"You lead a team of workers:\n{listed}\nGive at most {max_assignments} of them "
            f"a task each that helps answer the question. They work at the same time.\n\n"
            f"Example question: Who wrote Hamlet?\nExample answer: {example}\n\n"
            f"Question: {question}\nAnswer:")


def worker_prompt(task: str, question: str, previous: str | None, feedback: str | None) -> str:
    prompt = task if task == question else f"{task}\n\n(This is part of answering: {question})"
    if feedback:
        if previous:
            prompt += f"\n\nYour previous answer:\n{previous}"
        prompt += f"\n\nYour supervisor's feedback:\n{feedback}\n\nWrite an improved answer."
    return prompt


def synthesis_prompt(question: str, result: str) -> str:
    return (f"Question: {question}\n\nYour team's result:\n{result}\n\n"
            f"Write the final answer to the question.")


def _parent(kind: str, name: str, children: list[Span]) -> Span:
    """A span grouping ``children``, with their usage and cost summed."""
    return Span(kind=kind, name=name, usage=Usage.total(c.usage for c in children),
                cost_usd=sum(c.cost_usd for c in children),
                latency_s=sum(c.latency_s for c in children if c.kind == "review")
                + max((c.latency_s for c in children if c.kind != "review"), default=0.0),
                start=min((c.start for c in children), default=time.time()),
                children=children)


def review_prompt(question: str, result: str) -> str:
    return (f"Review an answer to a question. Approve it only if it answers the question "
            f"correctly; reject an answer that is wrong, off the topic or nonsense, and say "
            f"what to fix.\n\nQuestion: {question}\n\nAnswer:\n{result}\n\n"
            f'Reply with JSON only: {{"feedback": "<what is right or wrong in the answer>", '
            f'"approved": true or false}}')


# -- the pattern -------------------------------------------------------------------------


class Supervisor(Model):
    """Assign, work, review, revise. See the module docstring."""

    kind = "supervisor"
    family = "hierarchical"

    def __init__(
        self,
        name: str,
        *,
        supervisor: Model,
        workers: Mapping[str, Model],
        max_rounds: int = 2,
        max_assignments: int | None = None,
        synthesize: bool = True,
        descriptions: Mapping[str, str] | None = None,
        max_task_chars: int = 400,
    ) -> None:
        super().__init__(name)
        if not workers:
            raise ValueError("a supervisor needs at least one worker")
        if max_rounds < 1:
            raise ValueError(f"max_rounds must be at least 1, got {max_rounds}")
        self.supervisor = supervisor
        self.workers = dict(workers)
        self.max_rounds = max_rounds
        self.max_assignments = max_assignments or len(self.workers)
        self.synthesize = synthesize
        self.descriptions = dict(descriptions or {})
        self.assign_schema = assignment_schema(list(self.workers), self.max_assignments,
                                               max_task_chars)
        self.review_schema = review_schema(max_task_chars)
        # A token holds at least one character; the rest is keys, names and punctuation.
        self.assign_tokens = 16 + self.max_assignments * (max_task_chars + 24)
        self.review_tokens = 24 + max_task_chars

    def children(self) -> Sequence[Model]:
        seen: dict[int, Model] = {}
        for m in (self.supervisor, *self.workers.values()):
            seen.setdefault(id(m), m)
        return list(seen.values())

    async def complete(self, request: Request) -> Completion:
        started = time.perf_counter()
        context.check()
        question = request.prompt
        assignments, attributes, spans, parts = await self._assign(request)
        latest: dict[int, Completion] = {}  # each assignment's latest answer
        feedback: str | None = None
        rounds: list[dict[str, Any]] = []
        attributes["rounds"] = rounds
        for number in range(1, self.max_rounds + 1):
            worker_spans, done, errors = await self._work(request, assignments, latest,
                                                          feedback)
            parts += done
            if not done and not latest:
                spans.append(_parent("round", f"round {number}", worker_spans))
                raise with_trace(AllModelsFailed(self.name, errors),
                              error_trace(self, started, parts, spans, attributes))
            record: dict[str, Any] = {"round": number, "failed_workers": sorted(errors)}
            rounds.append(record)
            if not done:
                # Nothing new to review: keep the previous round's result.
                record.update(approved=None, feedback="every worker failed")
                spans.append(_parent("round", f"round {number}", worker_spans))
                break
            combined = self._combined(assignments, latest)
            verdict, feedback, calls, review = await self._review(question, combined, request)
            parts += calls
            record.update(approved=verdict, feedback=feedback)
            spans.append(_parent("round", f"round {number}", [*worker_spans, review]))
            if verdict is not False:
                break
        attributes["rounds_used"] = len(rounds)
        attributes["approved"] = rounds[-1]["approved"]
        combined = self._combined(assignments, latest)
        if not self.synthesize or len(assignments) == 1:
            lone = latest[0] if len(assignments) == 1 else None
            out = combine(self, combined, started=started, parts=parts, winner=lone,
                          attributes=attributes)
            return with_children(out, spans)
        context.check()
        t0 = time.perf_counter()
        try:
            final = await call(self.supervisor, request.with_prompt(synthesis_prompt(
                question, combined)))
        except ProviderError as exc:
            spans.append(group_span("synthesis", "synthesis", [],
                                    [error_span(self.supervisor, exc, t0)], error=str(exc)))
            raise with_trace(StepFailed(self.name, "synthesis", exc),
                         error_trace(self, started, parts, spans, attributes)) from exc
        spans.append(group_span("synthesis", "synthesis", [final]))
        out = combine(self, final.text, started=started, parts=[*parts, final], winner=final,
                      attributes=attributes)
        return with_children(out, spans)

    @staticmethod
    def _combined(assignments: Sequence[Assignment], latest: Mapping[int, Completion]) -> str:
        # Sections whenever several tasks were given, even if only one answer came back.
        return combine_outputs([(assignments[i].worker, latest[i].text) for i in sorted(latest)],
                               labelled=len(assignments) > 1)

    async def _assign(
        self, request: Request
    ) -> tuple[list[Assignment], dict[str, Any], list[Span], list[Completion]]:
        question = request.prompt
        names = list(self.workers)
        # Room for the longest answer the schema allows: cut short, it would not parse.
        ask = request.without_tools().with_prompt(
            assign_prompt(question, names, self.descriptions, self.max_assignments)
        ).with_params(max_tokens=self.assign_tokens)
        t0 = time.perf_counter()
        calls: list[Completion] = []
        failed: list[Span] = []
        notes: list[str] = []
        reason: str | None = None
        try:
            value, calls = await ask_json(self.supervisor, ask, self.assign_schema)
            assignments, notes = parse_assignments(value, names, self.max_assignments)
        except MalformedResponse as exc:
            calls, reason = calls_of(exc), f"unparseable assignments: {exc}"
        except ProviderError as exc:
            failed.append(error_span(self.supervisor, exc, t0))
            reason = f"supervisor failed: {exc}"
        except ValueError as exc:
            reason = f"unusable assignments: {exc}"
        if reason is not None:
            assignments = [Assignment(names[0], question)]
        attributes: dict[str, Any] = {
            "assignments": [a.to_dict() for a in assignments],
            "fallback_reason": reason,
        }
        if notes:
            attributes["assignment_notes"] = notes
        span = group_span("assign", "assign", calls, failed,
                          attributes={"model": self.supervisor.name, "calls": len(calls)})
        return assignments, attributes, [span], calls

    async def _work(
        self, request: Request, assignments: Sequence[Assignment],
        latest: dict[int, Completion], feedback: str | None,
    ) -> tuple[list[Span], list[Completion], dict[str, ChorusError]]:
        """One round: every assignment at once. ``latest`` keeps each assignment's latest
        answer (a worker that fails in a revision keeps its earlier one)."""
        context.check()
        question = request.prompt
        requests = []
        for i, a in enumerate(assignments):
            if a.task == question and feedback is None:
                requests.append(request)  # the fallback: the request as it came
            else:
                prev = latest[i].text if i in latest else None
                requests.append(request.without_tools().with_prompt(
                    worker_prompt(a.task, question, prev, feedback)))
        outcomes = await gather([self.workers[a.worker] for a in assignments], requests)
        context.check()  # a deadline or cancellation during the round ends the request
        done: list[Completion] = []
        spans: list[Span] = []
        errors: dict[str, ChorusError] = {}
        for i, (a, o) in enumerate(zip(assignments, outcomes, strict=True)):
            attrs = {"task": a.task, "model": o.model.name}
            if o.completion is not None:
                latest[i] = o.completion
                done.append(o.completion)
                spans.append(group_span("worker", a.worker, [o.completion], attributes=attrs))
            else:
                assert o.error is not None
                errors[a.worker if a.worker not in errors else f"{a.worker}#{i + 1}"] = o.error
                spans.append(group_span("worker", a.worker, [], [o.span], attributes=attrs,
                                        error=str(o.error)))
        return spans, done, errors

    async def _review(self, question: str, combined: str, request: Request
                      ) -> tuple[bool | None, str, list[Completion], Span]:
        """The verdict (None when the review could not be had), feedback, calls, span."""
        ask = request.without_tools().with_prompt(review_prompt(question, combined)).with_params(
            max_tokens=self.review_tokens)
        t0 = time.perf_counter()
        try:
            value, calls = await ask_json(self.supervisor, ask, self.review_schema)
            approved, feedback = parse_review(value)
        except MalformedResponse as exc:
            return None, f"unreadable review: {exc}", calls_of(exc), group_span(
                "review", "review", calls_of(exc), error=str(exc))
        except ProviderError as exc:
            return None, f"review failed: {exc}", [], group_span(
                "review", "review", [], [error_span(self.supervisor, exc, t0)], error=str(exc))
        except ValueError as exc:
            return None, f"unreadable review: {exc}", calls, group_span(
                "review", "review", calls, error=str(exc))
        return approved, feedback, calls, group_span(
            "review", "review", calls, attributes={"approved": approved, "feedback": feedback})


class SupervisorConfig(PatternConfig):
    kind: Literal["supervisor"] = "supervisor"
    #: The model that assigns tasks and reviews the result.
    supervisor: ModelRef
    #: Worker name -> model; the first one gets the whole question on a fallback.
    workers: dict[str, ModelRef] = Field(min_length=1)
    #: Rounds of work in all (the first one included); 1 means no revision.
    max_rounds: int = Field(2, ge=1, le=10)
    #: At most this many tasks per round (default: one per worker).
    max_assignments: int | None = Field(None, ge=1, le=32)
    #: Have the supervisor write the final answer from the workers' answers (when there
    #: are several); false: the answers in ``[worker]`` sections.
    synthesize: bool = True
    #: Worker name -> what it is good for, shown to the supervisor.
    descriptions: dict[str, str] = Field(default_factory=dict)
    max_task_chars: int = Field(400, ge=16, le=8000)


def build(cfg: SupervisorConfig, b: BuildContext) -> Supervisor:
    return Supervisor(
        b.name,
        supervisor=b.model(cfg.supervisor, "supervisor"),
        workers={w: b.model(ref, "workers", w) for w, ref in cfg.workers.items()},
        max_rounds=cfg.max_rounds,
        max_assignments=cfg.max_assignments,
        synthesize=cfg.synthesize,
        descriptions=cfg.descriptions,
        max_task_chars=cfg.max_task_chars,
    )
