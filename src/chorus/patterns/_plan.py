"""Plans as data: the schema a planner answers in, checking what it answered, the DAG
levels, and the prompts built from step results. No I/O here; ``planner.py`` drives it.

A plan that cannot be used (no steps, too many, duplicate ids, unknown dependencies, a
cycle ...) is not an error for the caller: ``make_plan`` falls back to one step, the
question itself for the default executor, and keeps the reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "DEFAULT_TYPE",
    "InvalidPlan",
    "Plan",
    "Step",
    "find_cycle",
    "levels_of",
    "make_plan",
    "one_step_plan",
    "plan_schema",
    "planner_prompt",
    "step_prompt",
    "synthesis_prompt",
    "validate_plan",
]

DEFAULT_TYPE = "default"
UnknownType = Literal["default", "invalid"]


class InvalidPlan(ValueError):
    """A plan that cannot run; caught by ``make_plan``, which falls back to one step."""


@dataclass(frozen=True, slots=True)
class Step:
    id: str
    type: str
    prompt: str
    depends_on: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "prompt": self.prompt,
                "depends_on": list(self.depends_on)}


@dataclass(frozen=True, slots=True)
class Plan:
    """Steps in the order given, the DAG levels (steps of a level may run together),
    why the planner's own plan was replaced (None when it was used), and the fixes made
    to it (an unknown type sent to the default executor ...)."""

    steps: tuple[Step, ...]
    levels: tuple[tuple[str, ...], ...]
    fallback_reason: str | None = None
    notes: tuple[str, ...] = ()

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def dependents(self, step_id: str) -> list[str]:
        return [s.id for s in self.steps if step_id in s.depends_on]


def plan_schema(types: Sequence[str], max_steps: int, *, max_id_chars: int = 24,
                max_prompt_chars: int = 400) -> dict[str, Any]:
    """The JSON schema of a plan, bounded everywhere so that a small model under
    constrained decoding cannot ramble until max_tokens."""
    step_id = {"type": "string", "minLength": 1, "maxLength": max_id_chars}
    return {
        "type": "object",
        "properties": {
            "steps": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_steps,
                "items": {
                    "type": "object",
                    "properties": {
                        "id": step_id,
                        "type": {"type": "string", "enum": list(types)},
                        "prompt": {"type": "string", "minLength": 1,
                                   "maxLength": max_prompt_chars},
                        "depends_on": {"type": "array", "maxItems": max(0, max_steps - 1),
                                       "items": step_id},
                    },
                    "required": ["id", "type", "prompt", "depends_on"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["steps"],
        "additionalProperties": False,
    }


def _ident(value: Any, what: str) -> str:
    # Small models write ids as numbers; 1 and "1" mean the same step.
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidPlan(f"{what} must be a string, got {json.dumps(value)[:40]}")
    text = str(value).strip()
    if not text:
        raise InvalidPlan(f"{what} is empty")
    return text


def _raw_steps(value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        if "steps" not in value:
            raise InvalidPlan("the answer has no 'steps' list")
        value = value["steps"]
    if not isinstance(value, list):
        raise InvalidPlan(f"'steps' must be a list, got {type(value).__name__}")
    if not value:
        raise InvalidPlan("the plan has no steps")
    return value


def _step(raw: Any, n: int, types: Sequence[str], unknown_type: UnknownType,
          notes: list[str]) -> Step:
    if not isinstance(raw, Mapping):
        raise InvalidPlan(f"step {n} is not an object")
    step_id = _ident(raw.get("id"), f"step {n} id")
    prompt = raw.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidPlan(f"step {step_id!r} has no prompt")
    kind = raw.get("type") or DEFAULT_TYPE
    if not isinstance(kind, str) or kind not in types:
        if unknown_type == "invalid":
            raise InvalidPlan(f"step {step_id!r} has unknown type {kind!r}")
        notes.append(f"step {step_id!r}: unknown type {kind!r} sent to {DEFAULT_TYPE!r}")
        kind = DEFAULT_TYPE
    deps_raw = raw.get("depends_on") or []
    if not isinstance(deps_raw, list):
        deps_raw = [deps_raw]
    deps = tuple(dict.fromkeys(_ident(d, f"a dependency of step {step_id!r}")
                               for d in deps_raw))
    return Step(step_id, kind, prompt.strip(), deps)


def find_cycle(steps: Sequence[Step]) -> list[str] | None:
    """One dependency cycle as ids, first repeated at the end (``[a, b, a]``), or None."""
    deps = {s.id: s.depends_on for s in steps}
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for d in deps.get(node, ()):
            if state.get(d) == 1:
                return path[path.index(d):] + [d]
            if d not in state:
                found = visit(d)
                if found:
                    return found
        state[node] = 2
        path.pop()
        return None

    for s in steps:
        if s.id not in state:
            found = visit(s.id)
            if found:
                return found
    return None


def levels_of(steps: Sequence[Step]) -> tuple[tuple[str, ...], ...]:
    """Steps grouped by depth: level 0 depends on nothing, level n on levels below n.
    Assumes the dependencies exist and have no cycle."""
    depth: dict[str, int] = {}
    deps = {s.id: s.depends_on for s in steps}

    def level(node: str) -> int:
        if node not in depth:
            depth[node] = 1 + max((level(d) for d in deps[node]), default=-1)
        return depth[node]

    for s in steps:
        level(s.id)
    out: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for s in steps:
        out[depth[s.id]].append(s.id)
    return tuple(tuple(lv) for lv in out)


def validate_plan(value: Any, *, types: Sequence[str], max_steps: int,
                  unknown_type: UnknownType = "default") -> Plan:
    """The plan in ``value`` (``{"steps": [...]}`` or a bare list), checked; raises
    InvalidPlan saying what is wrong."""
    raw = _raw_steps(value)
    if len(raw) > max_steps:
        raise InvalidPlan(f"the plan has {len(raw)} steps, more than max_steps={max_steps}")
    notes: list[str] = []
    steps = [_step(r, n, types, unknown_type, notes) for n, r in enumerate(raw, 1)]
    seen: set[str] = set()
    for s in steps:
        if s.id in seen:
            raise InvalidPlan(f"duplicate step id {s.id!r}")
        seen.add(s.id)
    for s in steps:
        for d in s.depends_on:
            if d not in seen:
                raise InvalidPlan(f"step {s.id!r} depends on unknown step {d!r}")
    cycle = find_cycle(steps)
    if cycle:
        raise InvalidPlan(f"dependency cycle: {' -> '.join(cycle)}")
    return Plan(tuple(steps), levels_of(steps), None, tuple(notes))


def one_step_plan(question: str, reason: str) -> Plan:
    """The fallback: the question itself, for the default executor."""
    step = Step("answer", DEFAULT_TYPE, question)
    return Plan((step,), (("answer",),), reason)


def make_plan(value: Any, question: str, *, types: Sequence[str], max_steps: int,
              unknown_type: UnknownType = "default") -> Plan:
    """The planner's plan when it is usable, else the one-step fallback with the reason."""
    try:
        return validate_plan(value, types=types, max_steps=max_steps,
                             unknown_type=unknown_type)
    except InvalidPlan as exc:
        return one_step_plan(question, f"unusable plan: {exc}")


def planner_prompt(question: str, types: Sequence[str], max_steps: int,
                   descriptions: Mapping[str, str] | None = None) -> str:
    """What the planner is asked: short, because small models lose the thread."""
    descriptions = descriptions or {}
    kinds = "\n".join(
        f"- {t}: {descriptions[t]}" if t in descriptions else f"- {t}" for t in types
    )
    example = json.dumps({"steps": [
        {"id": "s1", "type": DEFAULT_TYPE, "prompt": "...", "depends_on": []},
        {"id": "s2", "type": DEFAULT_TYPE, "prompt": "...", "depends_on": ["s1"]},
    ]})
    return (
        f"Split the question below into at most {max_steps} steps. Each step has a unique "
        f"id, a type, a prompt that can be answered on its own, and depends_on: the ids of "
        f"the steps whose results it needs. Steps that do not depend on each other run at "
        f"the same time.\nStep types:\n{kinds}\n"
        f"Answer with JSON only, like: {example}\n\nQuestion: {question}"
    )


def step_prompt(step: Step, question: str, dep_outputs: Mapping[str, str]) -> str:
    """A step's prompt, with the results of the steps it depends on."""
    if not dep_outputs:
        return step.prompt
    results = "\n\n".join(f"[{sid}]\n{text}" for sid, text in dep_outputs.items())
    return (f"{step.prompt}\n\nThis is one step towards answering: {question}\n"
            f"Results of earlier steps:\n{results}")


def synthesis_prompt(question: str, results: Mapping[str, str],
                     failed: Mapping[str, str]) -> str:
    """What the synthesiser is asked: the question, each step's result, what failed."""
    parts = [f"[{sid}]\n{text}" for sid, text in results.items()]
    parts += [f"[{sid}] (no result: {why})" for sid, why in failed.items()]
    joined = "\n\n".join(parts)
    return (f"Answer the question using the results of the steps below.\n\n"
            f"Question: {question}\n\nStep results:\n{joined}\n\nAnswer:")
