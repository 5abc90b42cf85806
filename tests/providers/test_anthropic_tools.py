"""Tools, tool results and images through AnthropicModel, on recorded exchanges in the
Messages API's format (tests/fixtures/anthropic/tool_use*.json)."""

from __future__ import annotations

import json

import pytest
from tests.providers.test_anthropic import Replay, collect

from chorus.core.errors import BadRequestError, CapabilityMissing
from chorus.core.types import (
    Completion,
    ForcedTool,
    ImagePart,
    Message,
    Params,
    Request,
    TextDelta,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
)
from chorus.providers.anthropic import messages_payload

WEATHER = Tool("get_weather", "The weather in a city", {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
PIXEL = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJ"
         "RU5ErkJggg==")


async def test_tools_images_and_tool_results_translate_both_ways() -> None:
    replay = Replay("tool_use.json")
    model = replay.model()
    request = Request((
        Message("system", "You answer travel questions."),
        Message.of_parts("user", [TextPart("Where is this, and what is the weather there now?"),
                                  ImagePart(f"data:image/png;base64,{PIXEL}")]),
        Message("assistant", "This looks like Paris. Let me check the weather.", tool_calls=(
            ToolCall("toolu_01A09q90qw90lq917835lq9", "get_weather", '{"city": "Paris"}'),)),
        Message("tool", "sunny, 24C", tool_call_id="toolu_01A09q90qw90lq917835lq9"),
        Message("user", "And in Lyon?"),
    ), Params(max_tokens=300, tools=(WEATHER,), tool_choice="required",
              parallel_tool_calls=False))
    try:
        out = await model.complete(request)
    finally:
        await model.aclose()
    replay.assert_sent_as_recorded()
    assert out.tool_calls == (ToolCall("toolu_01D7FLrfh4GYq7yT1ULFeyMV", "get_weather",
                                       '{"city": "Lyon"}'),)
    assert out.finish_reason == "tool_calls" and out.text == "Checking Lyon."


async def test_a_streamed_tool_use_becomes_tool_call_pieces() -> None:
    replay = Replay("tool_use_stream.json")
    model = replay.model()
    try:
        events = await collect(model, Request.of("Weather in Rome?", max_tokens=300,
                                                 tools=(WEATHER,), tool_choice="auto"))
    finally:
        await model.aclose()
    replay.assert_sent_as_recorded()
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    pieces = [e for e in events if isinstance(e, ToolCallDelta)]
    assert text == "Let me check."
    assert pieces[0] == ToolCallDelta(0, "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather", "")
    assert json.loads("".join(p.arguments for p in pieces)) == {"city": "Rome"}
    final = events[-1]
    assert isinstance(final, Completion) and final.finish_reason == "tool_calls"
    assert final.text == "Let me check."
    assert final.tool_calls[0].args() == {"city": "Rome"}


def test_tool_choice_shapes() -> None:
    def choice(**p: object) -> object:
        return messages_payload("m", Request.of("x", tools=(WEATHER,), **p))["tool_choice"]

    assert choice() == {"type": "auto"}
    assert choice(tool_choice="none") == {"type": "none"}
    assert choice(tool_choice=ForcedTool("get_weather")) == {"type": "tool",
                                                             "name": "get_weather"}
    tool_results = messages_payload("m", Request((
        Message("assistant", "", tool_calls=(ToolCall("a", "f"), ToolCall("b", "f"))),
        Message("tool", "1", tool_call_id="a"), Message("tool", "2", tool_call_id="b"))))
    assert [b["tool_use_id"] for b in tool_results["messages"][1]["content"]] == ["a", "b"]
    url = messages_payload("m", Request((Message.of_parts("user", [ImagePart("https://x/a.png")]),)))
    assert url["messages"][0]["content"] == [{"type": "image", "source": {
        "type": "url", "url": "https://x/a.png"}}]
    with pytest.raises(BadRequestError, match="one"):
        messages_payload("m", Request.of("x", tools=(WEATHER,), response_format={
            "type": "object"}))


async def test_logprobs_are_refused_before_the_call() -> None:
    replay = Replay("tool_use.json")
    model = replay.model()
    with pytest.raises(CapabilityMissing, match="logprobs"):
        await model.complete(Request.of("x", logprobs=True))
    assert replay.requests == []
    await model.aclose()
