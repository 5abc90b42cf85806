"""Tool calls and token logprobs from the bundled llama.cpp models, and the I/O-free
prompt, schema and answer handling behind them (providers/_local_tools.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import jsonschema
import pytest

from chorus.core.model import stream_or_complete
from chorus.core.types import (
    Completion,
    ForcedTool,
    Message,
    Params,
    Request,
    Tool,
    ToolCall,
    ToolCallDelta,
)
from chorus.providers import _local_tools as lt
from chorus.providers.local import LocalModel

WEATHER = Tool("get_weather", "Weather for a city", {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
ADD = Tool("add", "Add two numbers", {
    "type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
    "required": ["a", "b"]})


# -- plain functions ---------------------------------------------------------------------

def test_bounded_limits_only_unbounded_strings() -> None:
    schema = {"type": "object", "properties": {
        "s": {"type": "string"}, "e": {"type": "string", "enum": ["x"]},
        "m": {"type": "string", "maxLength": 5}, "n": {"type": ["string", "null"]}}}
    out = lt.bounded(schema)
    props = out["properties"]
    assert props["s"]["maxLength"] == lt.MAX_STRING and props["n"]["maxLength"] == lt.MAX_STRING
    assert "maxLength" not in props["e"] and props["m"]["maxLength"] == 5
    assert "maxLength" not in schema["properties"]["s"]  # the caller's schema is untouched


def test_plans_by_tool_choice() -> None:
    assert lt.plan_for(Request.of("x")) is None
    assert lt.plan_for(Request.of("x", tools=(WEATHER,), tool_choice="none")) is None
    forced = lt.plan_for(Request.of("x", tools=(WEATHER, ADD), tool_choice=ForcedTool("add")))
    assert forced is not None and forced.mode == "forced" and forced.tools == (ADD,)
    one = lt.plan_for(Request.of("x", tools=(WEATHER,), tool_choice="required"))
    assert one is not None and one.mode == "forced"  # required with one tool: that tool
    two = lt.plan_for(Request.of("x", tools=(WEATHER, ADD), tool_choice="required"))
    assert two is not None and two.mode == "required" and len(two.schema["anyOf"]) == 2
    auto = lt.plan_for(Request.of("x", tools=(WEATHER,)))
    assert auto is not None and auto.mode == "auto" and auto.schema is None
    assert "get_weather" in auto.instruction


def test_answers_become_calls_or_text() -> None:
    auto = lt.plan_for(Request.of("x", tools=(WEATHER,)))
    assert auto is not None
    text, calls = lt.read_answer(auto, '{"name": "get_weather", "arguments": {"city": "Oslo"}}',
                                 "c1")
    assert text == "" and calls == (ToolCall("c1", "get_weather", '{"city": "Oslo"}'),)
    assert lt.read_answer(auto, "It is sunny.") == ("It is sunny.", ())
    assert lt.read_answer(auto, '{"name": "other", "arguments": {}}')[1] == ()


def test_history_with_calls_renders_for_any_template() -> None:
    msgs = lt.plain_messages([
        Message("assistant", "", tool_calls=(ToolCall("c1", "get_weather", '{"city":"Oslo"}'),)),
        Message("tool", "rain", tool_call_id="c1")])
    assert msgs[0] == Message("assistant", '{"name": "get_weather", "arguments": {"city": "Oslo"}}')
    assert msgs[1].role == "user" and "c1" in msgs[1].content and "rain" in msgs[1].content


# -- the bundled model -------------------------------------------------------------------

@pytest.fixture(scope="module")
def smollm2() -> Iterator[LocalModel]:
    model = LocalModel("smollm2", "smollm2-135m", params=Params(temperature=0, max_tokens=96,
                                                                   seed=0))
    ok, why = model.usable()
    if not ok:
        pytest.skip(why)
    yield model


@pytest.mark.local
@pytest.mark.parametrize("prompt", ["What's the weather in Paris?", "Is it raining in Tokyo?",
                                    "Tell me a joke."])
async def test_a_forced_call_is_valid_json_for_the_schema(smollm2: LocalModel,
                                                          prompt: str) -> None:
    out = await smollm2.complete(Request.of(prompt, tools=(WEATHER,),
                                            tool_choice=ForcedTool("get_weather")))
    assert out.finish_reason == "tool_calls" and out.text == ""
    (call,) = out.tool_calls
    assert call.name == "get_weather" and call.id.startswith("call_")
    jsonschema.validate(call.args(), WEATHER.parameters)


@pytest.mark.local
async def test_required_picks_one_of_several_tools_with_fitting_arguments(
        smollm2: LocalModel) -> None:
    out = await smollm2.complete(Request.of("What is 2 plus 3?", tools=(WEATHER, ADD),
                                            tool_choice="required"))
    (call,) = out.tool_calls
    tool = {"get_weather": WEATHER, "add": ADD}[call.name]
    jsonschema.validate(call.args(), tool.parameters)


@pytest.mark.local
async def test_a_streamed_forced_call_sends_its_arguments_as_they_come(
        smollm2: LocalModel) -> None:
    events = [e async for e in stream_or_complete(smollm2, Request.of(
        "Weather in Rome?", tools=(WEATHER,), tool_choice=ForcedTool("get_weather")))]
    pieces = [e for e in events if isinstance(e, ToolCallDelta)]
    final = events[-1]
    assert isinstance(final, Completion) and len(pieces) > 1
    assert pieces[0].id == final.tool_calls[0].id and pieces[0].name == "get_weather"
    assert all(p.id is None and p.name is None for p in pieces[1:])
    joined = "".join(p.arguments for p in pieces)
    assert json.loads(joined) == final.tool_calls[0].args()


@pytest.mark.local
async def test_logprobs_come_from_the_sampler_with_top_alternatives(
        smollm2: LocalModel) -> None:
    out = await smollm2.complete(Request.of("Say yes.", logprobs=True, top_logprobs=3,
                                            max_tokens=4))
    assert out.logprobs is not None and len(out.logprobs) == out.usage.output_tokens
    assert "".join(t.token for t in out.logprobs).startswith(out.text.strip()[:2])
    for t in out.logprobs:
        assert len(t.top) == 3 and t.logprob <= 0
        assert [lp for _, lp in t.top] == sorted((lp for _, lp in t.top), reverse=True)
        assert t.top[0][1] >= t.logprob  # greedy picks the best, or grammar/sampling a worse
    plain = await smollm2.complete(Request.of("Say yes.", max_tokens=2))
    assert plain.logprobs is None
