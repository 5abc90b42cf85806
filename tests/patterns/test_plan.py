"""Plan checking, DAG levels and prompts: plain functions, no event loop."""

from __future__ import annotations

from typing import Any

import pytest

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
from chorus.patterns._structured import parse_json

TYPES = ["default", "lookup"]


def step(sid: str, *deps: str, type: str = "default") -> dict[str, object]:
    return {"id": sid, "type": type, "prompt": f"do {sid}", "depends_on": list(deps)}


def check(value: object, max_steps: int = 4, **kw: Any) -> Plan:
    return validate_plan(value, types=TYPES, max_steps=max_steps, **kw)


def test_schema_is_bounded() -> None:
    schema = plan_schema(TYPES, 3, max_id_chars=10, max_prompt_chars=50)
    steps = schema["properties"]["steps"]
    item = steps["items"]
    assert steps["maxItems"] == 3 and steps["minItems"] == 1
    assert item["properties"]["type"]["enum"] == TYPES
    assert item["properties"]["prompt"]["maxLength"] == 50
    assert item["properties"]["id"]["maxLength"] == 10
    assert item["properties"]["depends_on"]["maxItems"] == 2
    assert item["additionalProperties"] is False


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
