"""Planner on scripted models: planning, fallback, the DAG, failures, deadlines."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from chorus.config.builder import Config
from chorus.core import context
from chorus.core.errors import (
    AllModelsFailed,
    Cancelled,
    ConfigError,
    DeadlineExceeded,
    ServerError,
    StepFailed,
)
from chorus.core.registry import registry
from chorus.core.types import Completion, Request
from chorus.patterns._plan import plan_schema, plan_tokens
from chorus.patterns.planner import Planner
from chorus.providers import FunctionModel, ScriptedModel

QUESTION = "Which city is bigger, Paris or Rome?"


def plan(*steps: tuple[Any, ...]) -> str:
    """JSON for steps given as (id, prompt, deps) or (id, prompt, deps, type)."""
    return json.dumps({"steps": [
        {"id": s[0], "type": s[3] if len(s) > 3 else "default", "prompt": s[1],
         "depends_on": list(s[2])} for s in steps
    ]})


def planner_of(*replies: str) -> ScriptedModel:
    return ScriptedModel("boss", replies=list(replies))


class Echo(FunctionModel):
    """An executor answering 'NAME did: <first line of the prompt>', after a latency."""

    def __init__(self, name: str = "worker", latency_s: float = 0.0) -> None:
        self.calls: list[Request] = []

        async def answer(request: Request) -> str:
            self.calls.append(request)
            await asyncio.sleep(latency_s)
            return f"{name} did: {request.prompt.splitlines()[0]}"

        super().__init__(name, answer)


echo = Echo


def children(done: Completion) -> list[str]:
    assert done.trace is not None
    return [c.name for c in done.trace.children]


async def test_plan_runs_and_is_synthesised() -> None:
    boss = planner_of(plan(("paris", "Population of Paris?", []),
                           ("rome", "Population of Rome?", []),
                           ("compare", "Compare them.", ["paris", "rome"])), "Rome is bigger.")
    worker = echo()
    p = Planner("p", planner=boss, executors={"default": worker})
    done = await p.complete(Request.of(QUESTION))
    assert done.text == "Rome is bigger."
    attrs = done.trace.attributes  # type: ignore[union-attr]
    assert attrs["fallback_reason"] is None
    assert [s["id"] for s in attrs["plan"]] == ["paris", "rome", "compare"]
    assert attrs["plan"][2]["depends_on"] == ["paris", "rome"]
    assert attrs["levels"] == [["paris", "rome"], ["compare"]]
    assert attrs["steps"] == {"paris": "ok", "rome": "ok", "compare": "ok"}
    assert children(done) == ["plan", "paris", "rome", "compare", "synthesis"]
    # The synthesiser saw the question and every step's result.
    synth = boss.calls[1].prompt
    assert QUESTION in synth and "worker did: Population of Rome?" in synth
    assert "worker did: Compare them." in synth
    # Usage covers every call: the plan, three steps, the synthesis.
    assert done.usage.total_tokens == sum(
        c.usage.total_tokens for c in done.trace.walk() if c.kind == "model")  # type: ignore[union-attr]
    assert len([s for s in done.trace.walk() if s.kind == "model"]) == 5  # type: ignore[union-attr]


async def test_planner_is_asked_with_a_bounded_schema() -> None:
    boss = planner_of(plan(("a", "x", [])), "final")
    p = Planner("p", planner=boss, executors={"default": echo(), "lookup": echo("look")},
                max_steps=3, max_prompt_chars=120)
    await p.complete(Request.of(QUESTION))
    schema = boss.calls[0].params.response_format
    assert schema == plan_schema(["default", "lookup"], 3, max_prompt_chars=120)
    assert boss.calls[0].params.max_tokens == plan_tokens(3, 120)
    assert QUESTION in boss.calls[0].prompt and "(at most 3)" in boss.calls[0].prompt


@pytest.mark.parametrize("reply", [
    "Sure! ```json\n" + plan(("a", "Find A.", []), ("b", "Find B.", [])) + "\n``` Done.",
    "My plan is " + plan(("a", "Find A.", []), ("b", "Find B.", [])) + " and that is all.",
    '{"steps": [{"id": "a", "type": "default", "prompt": "Find A.", "depends_on": [],},'
    ' {"id": "b", "type": "default", "prompt": "Find B.", "depends_on": []},]}',
])
async def test_tolerant_parsing(reply: str) -> None:
    p = Planner("p", planner=planner_of(reply, "final"), executors={"default": echo()})
    done = await p.complete(Request.of(QUESTION))
    assert done.trace.attributes["fallback_reason"] is None  # type: ignore[union-attr]
    assert [s["id"] for s in done.trace.attributes["plan"]] == ["a", "b"]  # type: ignore[union-attr]


async def test_invalid_json_gets_one_repair_round_trip() -> None:
    boss = planner_of("steps: first find A then B", plan(("a", "Find A.", [])), "final")
    p = Planner("p", planner=boss, executors={"default": echo()})
    done = await p.complete(Request.of(QUESTION))
    assert done.text == "final"
    assert "not valid JSON" in boss.calls[1].prompt
    plan_span = done.trace.children[0]  # type: ignore[union-attr]
    assert plan_span.attributes["calls"] == 2 and len(plan_span.children) == 2


async def test_unparseable_plan_falls_back_to_one_step() -> None:
    boss = planner_of("I will plan. I will plan. I will plan.", "Still no JSON, sorry.")
    worker = echo()
    request = Request.of(QUESTION, system="Be brief.", max_tokens=20)
    done = await Planner("p", planner=boss, executors={"default": worker}).complete(request)
    attrs = done.trace.attributes  # type: ignore[union-attr]
    assert attrs["fallback_reason"].startswith("unparseable plan: ")
    assert attrs["plan"] == [{"id": "answer", "type": "default", "prompt": QUESTION,
                              "depends_on": []}]
    # The question went to the default executor as it came; its answer is the answer.
    assert worker.calls == [request]
    assert done.text == f"worker did: {QUESTION}"
    assert len(boss.calls) == 2  # plan + repair, no synthesis
    assert children(done) == ["plan", "answer"]


@pytest.mark.parametrize(("reply", "reason"), [
    (plan(("a", "x", ["b"]), ("b", "y", ["a"])), "dependency cycle: a -> b -> a"),
    (plan(("a", "x", ["nope"])), "step 'a' depends on unknown step 'nope'"),
    (plan(("a", "x", []), ("a", "y", [])), "duplicate step id 'a'"),
    (plan(("a", "x", []), ("a", "x", []), ("a", "x", [])), "duplicate step id 'a'"),
    (plan(*[(f"s{i}", "x", []) for i in range(5)]), "the plan has 5 steps, more than max_steps=3"),
    ('{"steps": []}', "the plan has no steps"),
    ('{"answer": "Rome"}', "the answer has no 'steps' list"),
])
async def test_unusable_plans_fall_back_with_the_reason(reply: str, reason: str) -> None:
    worker = echo()
    p = Planner("p", planner=planner_of(reply), executors={"default": worker}, max_steps=3)
    done = await p.complete(Request.of(QUESTION))
    assert done.trace.attributes["fallback_reason"] == f"unusable plan: {reason}"  # type: ignore[union-attr]
    assert done.text == f"worker did: {QUESTION}"
    assert len(worker.calls) == 1


async def test_failed_planner_call_falls_back() -> None:
    boss = ScriptedModel("boss", fail_with="server_error", fail_times=-1)
    done = await Planner("p", planner=boss, executors={"default": echo()}).complete(
        Request.of(QUESTION))
    assert done.trace.attributes["fallback_reason"].startswith("planner failed: ")  # type: ignore[union-attr]
    assert done.trace.children[0].children[0].error  # type: ignore[union-attr]


async def test_steps_go_to_executors_by_type() -> None:
    look, default = echo("look"), echo("default")
    boss = planner_of(plan(("a", "Look it up.", [], "lookup"), ("b", "Think.", [], "poetry")),
                      "final")
    done = await Planner("p", planner=boss,
                         executors={"default": default, "lookup": look}).complete(
        Request.of(QUESTION))
    assert [c.prompt for c in look.calls] == ["Look it up."]
    assert [c.prompt for c in default.calls] == ["Think."]
    assert done.trace.attributes["plan_notes"] == [  # type: ignore[union-attr]
        "step 'b': unknown type 'poetry' sent to 'default'"]
    assert done.trace.children[2].attributes["executor"] == "default"  # type: ignore[union-attr]


async def test_unknown_type_can_invalidate_the_plan() -> None:
    boss = planner_of(plan(("a", "Think.", [], "poetry")))
    p = Planner("p", planner=boss, executors={"default": echo()}, unknown_type="invalid")
    done = await p.complete(Request.of(QUESTION))
    assert "unknown type 'poetry'" in done.trace.attributes["fallback_reason"]  # type: ignore[union-attr]


async def test_independent_steps_run_concurrently() -> None:
    boss = planner_of(plan(("a", "A.", []), ("b", "B.", [])), "final")
    p = Planner("p", planner=boss, executors={"default": echo(latency_s=0.2)})
    t0 = time.perf_counter()
    await p.complete(Request.of(QUESTION))
    elapsed = time.perf_counter() - t0
    assert 0.2 <= elapsed < 0.35, elapsed  # one step's latency, not two


async def test_a_step_starts_when_its_own_dependencies_are_done() -> None:
    # c depends only on a (fast); it must not wait for b (slow), which is on a's level.
    fast, slow = echo("fast", 0.05), echo("slow", 0.3)
    boss = planner_of(plan(("a", "A.", [], "fast"), ("b", "B.", [], "slow"),
                           ("c", "C.", ["a"], "fast")), "final")
    p = Planner("p", planner=boss, executors={"default": fast, "fast": fast, "slow": slow})
    t0 = time.perf_counter()
    done = await p.complete(Request.of(QUESTION))
    assert time.perf_counter() - t0 < 0.45
    assert done.trace.attributes["order"] == ["a", "c", "b"]  # type: ignore[union-attr]


async def test_dependency_outputs_reach_the_dependent_prompt() -> None:
    worker = echo()
    boss = planner_of(plan(("a", "Find A.", []), ("b", "Find B.", []),
                           ("c", "Combine.", ["a", "b"])), "final")
    await Planner("p", planner=boss, executors={"default": worker}).complete(Request.of(QUESTION))
    combine_prompt = next(c.prompt for c in worker.calls if c.prompt.startswith("Combine."))
    assert "[a]\nworker did: Find A." in combine_prompt
    assert "[b]\nworker did: Find B." in combine_prompt
    independent = [c.prompt for c in worker.calls if not c.prompt.startswith("Combine.")]
    assert sorted(independent) == ["Find A.", "Find B."]


async def test_failed_step_skips_its_dependents_and_synthesis_uses_the_rest() -> None:
    worker = ScriptedModel("w", rules={"Broken": ServerError("down", model="w")},
                           default="fine")
    boss = planner_of(plan(("a", "Broken step.", []), ("b", "Needs a.", ["a"]),
                           ("c", "Independent.", [])), "partial answer")
    done = await Planner("p", planner=boss, executors={"default": worker}).complete(
        Request.of(QUESTION))
    assert done.text == "partial answer"
    attrs = done.trace.attributes  # type: ignore[union-attr]
    assert attrs["steps"] == {"a": "failed", "b": "skipped", "c": "ok"}
    assert [c.prompt for c in worker.calls] == ["Broken step.", "Independent."]
    spans = {s.name: s for s in done.trace.children}  # type: ignore[union-attr]
    assert "down" in (spans["a"].error or "")
    assert spans["b"].error == "skipped: dependency 'a' did not succeed"
    synth = boss.calls[1].prompt
    assert "[c]\nfine" in synth and "[a] (no result: failed:" in synth
    assert "[b] (no result: skipped" in synth


async def test_every_step_failing_raises() -> None:
    worker = ScriptedModel("w", fail_with="server_error", fail_times=-1)
    boss = planner_of(plan(("a", "A.", []), ("b", "B.", [])))
    with pytest.raises(AllModelsFailed) as info:
        await Planner("p", planner=boss, executors={"default": worker}).complete(
            Request.of(QUESTION))
    assert set(info.value.errors) == {"a", "b"}
    span = info.value.trace
    assert [c.name for c in span.children] == ["plan", "a", "b"]


async def test_fallback_step_failing_raises_step_failed() -> None:
    worker = ScriptedModel("w", fail_with="timeout", fail_times=-1)
    with pytest.raises(StepFailed, match="step 'answer' failed"):
        await Planner("p", planner=planner_of("no", "no"),
                      executors={"default": worker}).complete(Request.of(QUESTION))


async def test_failed_synthesis_raises_step_failed() -> None:
    boss = ScriptedModel("boss", replies=[plan(("a", "A.", [])), ServerError("x", model="b")])
    with pytest.raises(StepFailed, match="step 'synthesis' failed"):
        await Planner("p", planner=boss, executors={"default": echo()}).complete(
            Request.of(QUESTION))


async def test_synthesizer_model_writes_the_answer() -> None:
    synth = ScriptedModel("synth", default="synthesised")
    boss = planner_of(plan(("a", "A.", [])))
    done = await Planner("p", planner=boss, executors={"default": echo()},
                         synthesizer=synth).complete(Request.of(QUESTION))
    assert done.text == "synthesised" and done.model == "synth"
    assert len(boss.calls) == 1 and len(synth.calls) == 1


async def test_deadline_stops_the_plan() -> None:
    boss = planner_of(plan(("a", "A.", []), ("b", "B.", ["a"])), "final")
    p = Planner("p", planner=boss, executors={"default": echo(latency_s=1.0)})
    t0 = time.perf_counter()
    with context.scope(deadline_s=0.2), pytest.raises(DeadlineExceeded):
        await p.complete(Request.of(QUESTION))
    assert time.perf_counter() - t0 < 0.6


async def test_cancelling_the_task_cancels_running_steps() -> None:
    worker = echo(latency_s=5.0)
    boss = planner_of(plan(("a", "A.", []), ("b", "B.", [])), "final")
    task = asyncio.create_task(
        Planner("p", planner=boss, executors={"default": worker}).complete(Request.of(QUESTION)))
    await asyncio.sleep(0.05)
    assert len(worker.calls) == 2
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [t for t in asyncio.all_tasks() if t.get_name().startswith("step ")] == []


async def test_cancelled_context_stops_before_the_next_step() -> None:
    async def cancel_then_answer(request: Request) -> str:
        context.current().cancel()
        return "a done"

    second = echo()
    boss = planner_of(plan(("a", "A.", []), ("b", "B.", ["a"], "more")), "final")
    p = Planner("p", planner=boss,
                executors={"default": FunctionModel("f", cancel_then_answer), "more": second})
    with context.scope() as ctx, pytest.raises(Cancelled):
        await p.complete(Request.of(QUESTION))
    assert ctx.is_cancelled and not context.current().is_cancelled
    assert second.calls == []


def test_yaml_builds_the_same_planner() -> None:
    cfg = Config.from_text("""
models:
  big: {provider: scripted, default: '{"steps": []}'}
  small: {provider: scripted, default: ok}
systems:
  plan:
    kind: planner
    planner: big
    executors: {default: small, lookup: {provider: scripted, default: fact}}
    max_steps: 4
""")
    p = cfg.get("plan")
    assert isinstance(p, Planner)
    assert p.max_steps == 4 and p.synthesizer is p.planner
    assert list(p.executors) == ["default", "lookup"]
    assert [m.name for m in p.children()] == ["big", "small", "plan.executors.lookup"]
    assert registry.get("pattern", "planner") is not None


def test_yaml_needs_a_default_executor() -> None:
    cfg = Config.from_text("""
models:
  small: {provider: scripted, default: ok}
systems:
  plan: {kind: planner, planner: small, executors: {lookup: small}}
""", "plan.yaml")
    with pytest.raises(ConfigError, match=r"plan.yaml:5: systems.plan.executors: needs a"):
        cfg.get("plan")


@pytest.mark.local
async def test_planner_on_the_local_135m_model_answers() -> None:
    if registry.get("provider", "local") is None:
        pytest.skip("the local provider is not available")
    cfg = Config.from_text("""
models:
  smollm2:
    provider: local
    model: smollm2-135m
    params: {temperature: 0, max_tokens: 160, seed: 0}
systems:
  plan: {kind: planner, planner: smollm2, executors: {default: smollm2}, max_steps: 2,
         max_prompt_chars: 80}
""")
    model = cfg.get("plan")
    try:
        done = await model.complete(Request.of("What is the capital of France?"))
    finally:
        await model.aclose()
    assert done.text.strip()
    attrs = done.trace.attributes  # type: ignore[union-attr]
    assert 1 <= len(attrs["plan"]) <= 2
    if attrs["fallback_reason"] is not None:
        assert attrs["plan"][0]["prompt"] == "What is the capital of France?"
    assert done.usage.output_tokens > 0
