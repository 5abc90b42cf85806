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
    "plan_tokens",
    "step_id",
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


def step_id(n: int) -> str:
    """The id of the ``n``-th step (from 1) in a plan written under ``plan_schema``."""
    return f"s{n}"


def plan_schema(types: Sequence[str], max_steps: int, *,
                max_prompt_chars: int = 400) -> dict[str, Any]:
    """The JSON schema of a plan, written so that every plan that follows it can run: step
    ``n`` has the id ``s<n>`` and may depend only on steps before it, so ids are unique,
    every dependency exists and there is no cycle. A provider that decodes under the
    schema (llama.cpp's grammars) can only write such plans. Each string is bounded, so
    a small model under constrained decoding cannot ramble until max_tokens."""

    def step(n: int) -> dict[str, Any]:
        earlier = [step_id(i) for i in range(1, n)]
        deps: dict[str, Any] = {"type": "array", "maxItems": len(earlier),
                                "items": {"type": "string", "enum": earlier or [step_id(1)]}}
        return {
            "type": "object",
            "properties": {
                "id": {"type": "string", "const": step_id(n)},
                "type": {"type": "string", "enum": list(types)},
                "prompt": {"type": "string", "minLength": 1, "maxLength": max_prompt_chars},
                "depends_on": deps,
            },
            "required": ["id", "type", "prompt", "depends_on"],
            "additionalProperties": False,
        }

    plans = [{"type": "array", "prefixItems": [step(i) for i in range(1, n + 1)],
              "items": False, "minItems": n, "maxItems": n}
             for n in range(1, max_steps + 1)]
    return {
        "type": "object",
        "properties": {"steps": plans[0] if len(plans) == 1 else {"anyOf": plans}},
        "required": ["steps"],
        "additionalProperties": False,
    }


def plan_tokens(max_steps: int, max_prompt_chars: int) -> int:
    """Enough output tokens for the longest plan ``plan_schema`` allows (a token holds at
    least one character; about 40 more per step for the keys, id, type and depends_on)."""
    return 16 + max_steps * (max_prompt_chars + 40 + 6 * max_steps)


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
    steps = _without_repeats(steps, notes)
    return Plan(tuple(steps), levels_of(steps), None, tuple(notes))


def _without_repeats(steps: Sequence[Step], notes: list[str]) -> list[Step]:
    """Drop a step that asks exactly what an earlier one asks (small models copy); what
    depended on it depends on the earlier step instead."""
    first: dict[tuple[str, str, tuple[str, ...]], str] = {}
    same: dict[str, str] = {}
    kept: list[Step] = []
    for s in steps:
        deps = tuple(dict.fromkeys(same.get(d, d) for d in s.depends_on))
        key = (" ".join(s.prompt.lower().split()), s.type, deps)
        if key in first:
            same[s.id] = first[key]
            notes.append(f"step {s.id!r} dropped: it repeats step {first[key]!r}")
            continue
        first[key] = s.id
        kept.append(Step(s.id, s.type, s.prompt, deps))
    return kept


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


_EXAMPLES = (
    ("Who wrote Hamlet, and who painted the Mona Lisa?",
     ("Who wrote Hamlet?", "Who painted the Mona Lisa?")),
    ("What is the largest ocean?", ("What is the largest ocean?",)),
    ("How tall is Mount Everest and how deep is the Mariana Trench?",
     ("How tall is Mount Everest?", "How deep is the Mariana Trench?")),
)


def planner_prompt(question: str, types: Sequence[str], max_steps: int,
                   descriptions: Mapping[str, str] | None = None) -> str:
    """What the planner is asked: short, because small models lose the thread, with a
    few worked examples (questions that ask one thing and two) in the plan's own form."""
    descriptions = descriptions or {}
    kinds = "\n".join(
        f"- {t}: {descriptions[t]}" if t in descriptions else f"- {t}" for t in types
    )

    def plan(prompts: Sequence[str]) -> str:
        return json.dumps({"steps": [
            {"id": step_id(i), "type": DEFAULT_TYPE, "prompt": p, "depends_on": []}
            for i, p in enumerate(prompts[:max_steps], 1)]})

    shots = "".join(f"Question: {q}\nPlan: {plan(steps)}\n\n" for q, steps in _EXAMPLES)
    return (
        f"Split a question into steps, one step for each thing it asks (at most "
        f"{max_steps}). Each step's prompt is a short, complete question. depends_on lists "
        f"the earlier steps whose results a step needs (usually none). Step types:\n"
        f"{kinds}\n\n{shots}Question: {question}\nPlan:"
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
