"""Content parts, tool definitions and calls, logprobs: the types and what a request needs."""

from __future__ import annotations

import dataclasses

import pytest

from chorus.core import capabilities
from chorus.core.errors import CapabilityMissing
from chorus.core.model import deltas_of, stream_or_complete
from chorus.core.types import (
    UNSET,
    Completion,
    ForcedTool,
    ImagePart,
    Message,
    Params,
    Request,
    TextDelta,
    TextPart,
    TokenLogprob,
    Tool,
    ToolCall,
    ToolCallDelta,
)
from chorus.providers.function import FunctionModel
from chorus.providers.scripted import ScriptedModel

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}


def test_new_params_are_unset_until_given_and_none_is_a_value() -> None:
    p = Params()
    for name in ("tools", "tool_choice", "parallel_tool_calls", "logprobs", "top_logprobs"):
        assert getattr(p, name) is UNSET
    assert Params(logprobs=None).given() == {"logprobs": None}


def test_params_from_dict_reads_openai_tool_shapes() -> None:
    p = Params.from_dict({"tools": [WEATHER], "tool_choice": "get_weather"})
    assert p.tools == (Tool("get_weather", None, WEATHER["function"]["parameters"]),)
    assert p.tool_choice == ForcedTool("get_weather")
    forced = Params.from_dict({"tool_choice": WEATHER})
    assert forced.tool_choice == ForcedTool("get_weather")
    assert Params.from_dict({"tool_choice": "required"}).tool_choice == "required"
    with pytest.raises(TypeError, match="function name"):
        Tool.from_dict({"type": "function", "function": {}})


def test_message_parts_keep_order_and_text() -> None:
    m = Message.of_parts("user", [TextPart("What is "), ImagePart("https://x/y.png"),
                                  TextPart("this?")])
    assert m.content == "What is this?"
    assert m.images == (ImagePart("https://x/y.png"),)
    assert len(m.parts) == 3
    # Text parts alone stay plain text.
    assert Message.of_parts("user", [TextPart("a"), TextPart("b")]) == Message("user", "ab")


def test_image_data_url() -> None:
    assert ImagePart("data:image/png;base64,iVBO").data() == ("image/png", "iVBO")
    with pytest.raises(ValueError):
        ImagePart("https://x/y.png").data()


def test_tool_calls_compare_by_name_and_canonical_arguments() -> None:
    a = ToolCall("1", "f", '{"b": 1, "a": [1, 2]}')
    b = ToolCall("2", "f", '{"a":[1,2],"b":1}')
    assert a.canonical() == b.canonical() == ("f", '{"a":[1,2],"b":1}')
    assert ToolCall("3", "f", "{oops").canonical() == ("f", "{oops")
    assert a.args() == {"a": [1, 2], "b": 1}


def test_request_needs() -> None:
    tools = (Tool("f"),)
    assert Request.of("hi").needs == frozenset()
    assert Request.of("hi", tools=tools).needs == {"tools"}
    assert Request.of("hi", tools=tools, tool_choice="none").needs == frozenset()
    assert Request.of("hi", logprobs=True, response_format={"type": "object"}).needs == {
        "logprobs", "json_schema"}
    img = Request((Message.of_parts("user", [ImagePart("https://x")]),))
    assert img.needs == {"images"}


def test_completion_to_dict_carries_tool_calls_and_logprobs() -> None:
    c = Completion("", "m", finish_reason="tool_calls", tool_calls=(ToolCall("1", "f"),),
                   logprobs=(TokenLogprob("a", -0.5, (("a", -0.5), ("b", -1.5))),))
    d = c.to_dict()
    assert d["tool_calls"] == [{"id": "1", "name": "f", "arguments": "{}"}]
    assert TokenLogprob.from_dict(d["logprobs"][0]) == c.logprobs[0]  # type: ignore[index]
    assert "tool_calls" not in Completion("x", "m").to_dict()


def test_new_types_are_frozen_and_slotted() -> None:
    for obj in (TextPart("a"), ImagePart("u"), ToolCall("1", "f"), Tool("f"),
                ForcedTool("f"), TokenLogprob("a", 0.0), ToolCallDelta(0)):
        assert not hasattr(obj, "__dict__")
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, dataclasses.fields(obj)[0].name, 1)


def test_a_whole_answer_becomes_stream_pieces() -> None:
    calls = (ToolCall("a", "f", '{"x":1}'), ToolCall("b", "g"))
    pieces = deltas_of(Completion("", "m", tool_calls=calls))
    assert pieces == [ToolCallDelta(0, "a", "f", '{"x":1}'), ToolCallDelta(1, "b", "g", "{}")]
    assert deltas_of(Completion("hi", "m")) == [TextDelta("hi", "m")]


async def test_stream_or_complete_passes_tool_calls_of_a_model_that_cannot_stream() -> None:
    call = ToolCall("c1", "f", "{}")
    fn = FunctionModel("fn", lambda r: Completion("", "fn", finish_reason="tool_calls",
                                                  tool_calls=(call,)), thread=False)
    events = [e async for e in stream_or_complete(fn, Request.of("hi"))]
    assert events[0] == ToolCallDelta(0, "c1", "f", "{}")
    assert isinstance(events[-1], Completion) and events[-1].tool_calls == (call,)


async def test_a_leaf_refuses_what_it_does_not_accept_before_calling() -> None:
    calls: list[Request] = []
    fn = FunctionModel("text_only", lambda r: calls.append(r) or "ok", thread=False,
                       accepts=["tools"])
    img = Request((Message.of_parts("user", [TextPart("see"), ImagePart("https://x")]),))
    with pytest.raises(CapabilityMissing, match="images"):
        await fn.complete(img)
    assert calls == []
    assert capabilities.missing(fn, img) == {"images"}
    assert await fn.complete(Request.of("hi", tools=(Tool("f"),))) is not None


def test_builtin_table_and_yaml_override() -> None:
    from chorus.config.schema import AcceptsConfig
    from chorus.providers.scripted import ScriptedModel

    assert capabilities.builtin_accepts("gpt-4o-mini-2024-07-18") == capabilities.BUILTIN_ACCEPTS[
        "gpt-4o"]
    assert capabilities.builtin_accepts("unknown-model") is None
    m = ScriptedModel("s", accepts=AcceptsConfig(images=False))
    assert m.accepts == capabilities.ALL_FEATURES - {"images"}
    with pytest.raises(ValueError, match="unknown feature"):
        ScriptedModel("s", accepts=["telepathy"])


def test_composites_accept_what_any_child_accepts() -> None:
    from chorus.patterns.fallback import Fallback

    a = ScriptedModel("a", accepts=["tools"])
    b = ScriptedModel("b", accepts=["images"])
    fb = Fallback("fb", [a, b])
    assert capabilities.accepts_of(fb) == {"tools", "images"}
    with pytest.raises(CapabilityMissing, match="logprobs.*models that accept logprobs: c"):
        capabilities.check(fb, Request.of("x", logprobs=True),
                           others={"a": a, "c": ScriptedModel("c")})
