"""Plan checking, DAG levels and prompts: plain functions, no event loop."""

from __future__ import annotations

from typing import Any

import pytest

from chorus.core.structured import parse_json
from chorus.patterns._plan import (
    InvalidPlan,
    Plan,
    Step,
    find_cycle,
    levels_of,
    make_plan,
    plan_schema,
    step_prompt,
    synthesis_prompt,
    validate_plan,
)

TYPES = ["default", "lookup"]


def step(sid: str, *deps: str, type: str = "default") -> dict[str, object]:
    return {"id": sid, "type": type, "prompt": f"do {sid}", "depends_on": list(deps)}


def check(value: object, max_steps: int = 4, **kw: Any) -> Plan:
    return validate_plan(value, types=TYPES, max_steps=max_steps, **kw)


def _follows(schema: dict[str, Any], value: object) -> bool:
    import jsonschema

    return jsonschema.Draft202012Validator(schema).is_valid(value)


def test_schema_admits_only_plans_that_run() -> None:
    schema = plan_schema(TYPES, 3, max_prompt_chars=50)
    ok = {"steps": [step("s1"), step("s2"), step("s3", "s1", "s2", type="lookup")]}
    assert _follows(schema, ok)
    assert check(ok).fallback_reason is None
    assert _follows(schema, {"steps": [step("s1")]})
    for bad in (
        {"steps": [step("s1", "s1")]},                      # a cycle
        {"steps": [step("s1", "s2"), step("s2")]},          # a later step
        {"steps": [step("s1"), step("s2", "Italy")]},       # no such step
        {"steps": [step("a")]},                             # ids are positional
        {"steps": [step("s1"), step("s1")]},                # a repeated id
        {"steps": []},
        {"steps": [step("s1"), step("s2"), step("s3"), step("s4")]},  # over max_steps
        {"steps": [{**step("s1"), "prompt": "x" * 51}]},    # bounded text
        {"steps": [step("s1", type="other")]},
    ):
        assert not _follows(schema, bad), bad


def test_schema_compiles_to_a_llama_cpp_grammar() -> None:
    from chorus.providers._llama import grammar_for

    assert grammar_for(plan_schema(TYPES, 3)) is not None


def test_a_repeated_step_is_dropped_and_its_dependents_rewired() -> None:
    plan = check({"steps": [step("s1"), step("s2"), step("s3", "s2")]} | {})
    assert len(plan.steps) == 3  # different prompts: all kept
    same = {"id": "s2", "type": "default", "prompt": "Do  S1", "depends_on": []}
    plan = check({"steps": [step("s1"), same, step("s3", "s2")]})
    assert [s.id for s in plan.steps] == ["s1", "s3"]
    assert plan.step("s3").depends_on == ("s1",)
    assert plan.notes == ("step 's2' dropped: it repeats step 's1'",)


@pytest.mark.parametrize("text", [
    '```json\n{"steps": [{"id": "a", "type": "default", "prompt": "x", "depends_on": []}]}\n```',
    'Here is my plan: {"steps": [{"id": "a", "type": "default", "prompt": "x", '
    '"depends_on": []}]} Hope it helps!',
    '{"steps": [{"id": "a", "type": "default", "prompt": "x", "depends_on": [],},],}',
])
def test_tolerant_text_gives_a_plan(text: str) -> None:
    plan = check(parse_json(text))
    assert [s.id for s in plan.steps] == ["a"]


def test_valid_plan_keeps_order_deps_and_levels() -> None:
    plan = validate_plan({"steps": [step("a"), step("b"), step("c", "a", "b", type="lookup")]},
                         types=TYPES, max_steps=4)
    assert plan.fallback_reason is None
    assert plan.steps[2] == Step("c", "lookup", "do c", ("a", "b"))
    assert plan.levels == (("a", "b"), ("c",))
    assert plan.dependents("a") == ["c"]


def test_bare_list_numeric_ids_and_missing_fields_are_accepted() -> None:
    plan = validate_plan([{"id": 1, "prompt": "x"}, {"id": 2, "prompt": "y", "depends_on": 1}],
                         types=TYPES, max_steps=4)
    assert [(s.id, s.type, s.depends_on) for s in plan.steps] == [
        ("1", "default", ()), ("2", "default", ("1",))]


@pytest.mark.parametrize(("value", "message"), [
    ({"steps": []}, "no steps"),
    ({"plan": []}, "no 'steps'"),
    ({"steps": "do it"}, "must be a list"),
    ({"steps": ["do it"]}, "step 1 is not an object"),
    ({"steps": [{"id": "", "prompt": "x"}]}, "step 1 id is empty"),
    ({"steps": [{"id": None, "prompt": "x"}]}, "step 1 id must be a string"),
    ({"steps": [{"id": "a", "prompt": "  "}]}, "step 'a' has no prompt"),
    ({"steps": [step("a"), step("a")]}, "duplicate step id 'a'"),
    ({"steps": [step("a"), step("b", "zz")]}, "step 'b' depends on unknown step 'zz'"),
    ({"steps": [step("a", "a")]}, "dependency cycle: a -> a"),
    ({"steps": [step("a", "c"), step("b", "a"), step("c", "b")]},
     "dependency cycle: a -> c -> b -> a"),
    ({"steps": [step(str(i)) for i in range(5)]}, "5 steps, more than max_steps=4"),
])
def test_unusable_plans_say_why(value: object, message: str) -> None:
    with pytest.raises(InvalidPlan) as info:
        check(value)
    assert message in str(info.value)


def test_unknown_type_goes_to_default_or_is_rejected() -> None:
    plan = check({"steps": [step("a", type="search")]})
    assert plan.steps[0].type == "default"
    assert plan.notes == ("step 'a': unknown type 'search' sent to 'default'",)
    with pytest.raises(InvalidPlan, match="unknown type 'search'"):
        check({"steps": [step("a", type="search")]}, unknown_type="invalid")


def test_find_cycle_and_levels() -> None:
    diamond = [Step("a", "default", "x"), Step("b", "default", "x", ("a",)),
               Step("c", "default", "x", ("a",)), Step("d", "default", "x", ("b", "c"))]
    assert find_cycle(diamond) is None
    assert levels_of(diamond) == (("a",), ("b", "c"), ("d",))
    loop = [Step("a", "default", "x", ("b",)), Step("b", "default", "x", ("a",))]
    assert find_cycle(loop) == ["a", "b", "a"]


def test_make_plan_falls_back_to_the_question() -> None:
    plan = make_plan({"steps": [step("a", "b"), step("b", "a")]}, "What is 2+2?",
                     types=TYPES, max_steps=4)
    assert plan.fallback_reason == "unusable plan: dependency cycle: a -> b -> a"
    assert [(s.type, s.prompt, s.depends_on) for s in plan.steps] == [
        ("default", "What is 2+2?", ())]
    assert plan.levels == (("answer",),)


def test_step_prompt_carries_dependency_outputs() -> None:
    s = Step("c", "default", "Compare them.", ("a", "b"))
    text = step_prompt(s, "Which is bigger?", {"a": "Paris: 2.1M", "b": "Rome: 2.8M"})
    assert text.startswith("Compare them.")
    assert "[a]\nParis: 2.1M" in text and "[b]\nRome: 2.8M" in text
    assert "Which is bigger?" in text
    assert step_prompt(Step("a", "default", "Find it."), "Q", {}) == "Find it."


def test_synthesis_prompt_has_question_results_and_failures() -> None:
    text = synthesis_prompt("Q?", {"a": "result a"}, {"b": "failed: boom"})
    assert "Question: Q?" in text
    assert "[a]\nresult a" in text
    assert "[b] (no result: failed: boom)" in text
