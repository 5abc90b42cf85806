"""Patterns and guardrails with tool calls and capabilities: vote and consensus agree on
calls by name and canonical arguments, routers and cascades skip a child that lacks what
the request needs (and say so), guardrails check tool-call arguments and tool results."""

from __future__ import annotations

import pytest

from chorus.core.errors import CapabilityMissing, GuardrailViolation
from chorus.core.model import stream_or_complete
from chorus.core.types import (
    Completion,
    ImagePart,
    Message,
    Request,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
)
from chorus.patterns.cascade import Cascade, LogprobCheck, Stage
from chorus.patterns.consensus import Consensus
from chorus.patterns.router import Router
from chorus.patterns.vote import Vote
from chorus.policies.guardrails.guard import Guardrails
from chorus.policies.guardrails.pii import PIICheck
from chorus.providers.scripted import ScriptedModel
from chorus.routing import KeywordClassifier, Rule

WEATHER = Tool("get_weather")
ASK = Request.of("Weather in Paris?", tools=(WEATHER,))
IMAGE = Request((Message.of_parts("user", [TextPart("what is it?"), ImagePart("https://x")]),))


def caller(name: str, arguments: str) -> ScriptedModel:
    return ScriptedModel(name, replies=[ToolCall(f"id_{name}", "get_weather", arguments)])


async def test_vote_groups_tool_calls_by_name_and_canonical_arguments() -> None:
    v = Vote("v", [caller("a", '{"city": "Rome"}'), caller("b", '{"city":"Paris","days":1}'),
                   caller("c", '{ "days": 1, "city": "Paris" }')])
    out = await v.complete(ASK)
    assert out.model == "b" and out.finish_reason == "tool_calls"
    assert out.tool_calls == (ToolCall("id_b", "get_weather", '{"city":"Paris","days":1}'),)
    assert out.trace is not None
    tally = out.trace.attributes["tally"]
    winner = out.trace.attributes["winner"]
    assert winner.startswith("tool_calls ") and tally[winner]["models"] == ["b", "c"]


async def test_a_tool_call_never_joins_a_text_answer() -> None:
    v = Vote("v", [ScriptedModel("t1", default="get_weather Paris"),
                   caller("a", '{"city": "Paris"}'),
                   ScriptedModel("t2", default="get_weather Paris")])
    out = await v.complete(ASK)
    assert out.text == "get_weather Paris" and out.tool_calls == ()


async def test_consensus_agrees_on_the_same_call() -> None:
    c = Consensus("c", [caller("a", '{"city":"Paris"}'), caller("b", '{ "city": "Paris" }')],
                  threshold=0.66, escalate_to=ScriptedModel("judge", default="escalated"))
    out = await c.complete(ASK)
    assert out.tool_calls and out.tool_calls[0].args() == {"city": "Paris"}
    assert out.trace is not None and out.trace.attributes["escalated"] is False


async def test_router_skips_a_route_model_without_images_and_says_so() -> None:
    text_only = ScriptedModel("text_only", default="words", accepts=["tools"])
    vision = ScriptedModel("vision", default="a cat")
    r = Router("r", KeywordClassifier([Rule("what", keywords=["what"])]),
               {"what": text_only, "general": vision}, default="general")
    out = await r.complete(IMAGE)
    assert out.text == "a cat" and text_only.calls == []
    assert out.trace is not None
    skipped = out.trace.attributes["skipped"]
    assert skipped == [{"model": "text_only", "route": "what",
                        "reason": "does not accept images"}]
    with pytest.raises(CapabilityMissing, match="images"):
        await Router("r2", KeywordClassifier([Rule("what", keywords=["what"])]),
                     {"what": text_only, "general": text_only},
                     default="general").complete(IMAGE)


async def test_cascade_skips_a_stage_that_cannot_take_the_request() -> None:
    small = ScriptedModel("small", default="tiny", accepts=["tools"])
    big = ScriptedModel("big", default="a cat")
    out = await Cascade("c", [Stage(small, LogprobCheck()), Stage(big)]).complete(IMAGE)
    assert out.text == "a cat" and small.calls == []
    assert out.trace is not None
    assert out.trace.attributes["stages"][0]["decision"] == "skipped"
    assert "images" in out.trace.attributes["stages"][0]["note"]


async def test_guardrails_redact_pii_in_tool_arguments_and_tool_results() -> None:
    inner = ScriptedModel("inner", replies=[
        ToolCall("c1", "send_mail", '{"to": "jane.doe@example.com", "body": "hi"}')], cycle=True)
    g = Guardrails("g", inner, input=[PIICheck(action="fix")], output=[PIICheck(action="fix")])
    history = Request((Message("user", "Mail Jane"),
                       Message("tool", "Jane's address is jane.doe@example.com",
                               tool_call_id="c0")), ASK.params)
    out = await g.complete(history)
    (call,) = out.tool_calls
    assert "example.com" not in call.arguments and call.args()["to"] == "<EMAIL_1>"
    assert "example.com" not in inner.calls[-1].messages[1].content
    assert inner.calls[-1].messages[1].tool_call_id == "c0"
    events = [e async for e in stream_or_complete(g, history)]
    pieces = [e for e in events if isinstance(e, ToolCallDelta)]
    assert pieces and "example.com" not in "".join(p.arguments for p in pieces)
    final = events[-1]
    assert isinstance(final, Completion) and "example.com" not in final.tool_calls[0].arguments


async def test_guardrails_block_pii_in_tool_arguments() -> None:
    inner = ScriptedModel("inner", replies=[ToolCall("c1", "f", '{"card": "4111 1111 1111 1111"}')])
    g = Guardrails("g", inner, output=[PIICheck(action="block")])
    with pytest.raises(GuardrailViolation, match="card"):
        await g.complete(ASK)


async def test_pii_in_a_text_part_of_a_message_with_an_image_is_redacted() -> None:
    inner = ScriptedModel("inner", default="ok")
    g = Guardrails("g", inner, input=[PIICheck(action="fix")])
    req = Request((Message.of_parts("user", [TextPart("mail bob@example.com "),
                                             ImagePart("https://x/y.png")]),))
    await g.complete(req)
    seen = inner.calls[-1].messages[0]
    assert "example.com" not in seen.content
    assert all("example.com" not in p.text for p in seen.parts if isinstance(p, TextPart))
    assert seen.images == (ImagePart("https://x/y.png"),)


async def test_a_pipeline_offers_tools_to_its_last_step_only() -> None:
    from chorus.patterns.pipeline import Pipeline, Step

    first = ScriptedModel("first", default="Paris")
    last = caller("last", '{"city": "Paris"}')
    out = await Pipeline("p", [Step(first, "City in {input}"),
                               Step(last, "Weather for {previous}")]).complete(ASK)
    assert "tools" not in first.calls[0].params.given()
    assert last.calls[0].params.tools == (WEATHER,)
    assert out.tool_calls[0].name == "get_weather"
