"""Tools, tool calls, image parts and logprobs through OpenAIModel: passed through as
OpenAI's wire format has them (MockTransport), and against llama.cpp's own server."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from tests.conftest import LlamaServer

from chorus.core.types import (
    Completion,
    ForcedTool,
    ImagePart,
    Message,
    Params,
    Request,
    TextPart,
    TokenLogprob,
    Tool,
    ToolCall,
    ToolCallDelta,
)
from chorus.providers.openai import OpenAIModel

WEATHER = Tool("get_weather", "Weather for a city", {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
CALL_BODY = {
    "id": "chatcmpl-2", "object": "chat.completion", "model": "gpt-4o-mini",
    "choices": [{"index": 0, "finish_reason": "tool_calls",
                 "message": {"role": "assistant", "content": None, "tool_calls": [
                     {"id": "call_abc", "type": "function", "function": {
                         "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                 "logprobs": {"content": [{"token": "{", "logprob": -0.01, "bytes": [123],
                                           "top_logprobs": [{"token": "{", "logprob": -0.01,
                                                             "bytes": [123]}]}]}}],
    "usage": {"prompt_tokens": 30, "completion_tokens": 9, "total_tokens": 39},
}


def mocked(handler: Any) -> OpenAIModel:
    return OpenAIModel("gpt", model_id="gpt-4o-mini", api_key="sk-test",
                       transport=httpx.MockTransport(handler))


async def test_tools_history_and_images_go_out_as_openai_has_them() -> None:
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json=CALL_BODY)

    history = (
        Message.of_parts("user", [TextPart("Weather here? "),
                                  ImagePart("data:image/png;base64,iVBO", "low")]),
        Message("assistant", "", tool_calls=(ToolCall("call_1", "get_weather",
                                                      '{"city":"Oslo"}'),)),
        Message("tool", "rain, 4C", tool_call_id="call_1"),
        Message("user", "And in Paris?"),
    )
    request = Request(history, Params(tools=(WEATHER,), tool_choice=ForcedTool("get_weather"),
                                      parallel_tool_calls=False, logprobs=True,
                                      top_logprobs=1))
    model = mocked(handler)
    out = await model.complete(request)
    await model.aclose()
    body = sent[0]
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "Weather here? "},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO",
                                            "detail": "low"}}]
    assert body["messages"][1] == {"role": "assistant", "content": "", "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}]}
    assert body["messages"][2] == {"role": "tool", "content": "rain, 4C",
                                   "tool_call_id": "call_1"}
    assert body["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city",
        "parameters": dict(WEATHER.parameters)}}]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False
    assert body["logprobs"] is True and body["top_logprobs"] == 1
    assert out.tool_calls == (ToolCall("call_abc", "get_weather", '{"city":"Paris"}'),)
    assert out.finish_reason == "tool_calls" and out.text == ""
    assert out.logprobs == (TokenLogprob("{", -0.01, (("{", -0.01),)),)


async def test_streamed_tool_call_pieces_pass_through_and_add_up() -> None:
    chunks = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [
            {"index": 0, "id": "call_9", "type": "function",
             "function": {"name": "get_weather", "arguments": ""}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "function": {"arguments": "{\"city\":"}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "function": {"arguments": "\"Rome\"}"}}]}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": 7}},
    ]
    text = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, text=text)

    model = mocked(handler)
    events = [e async for e in model.stream(Request.of("Rome?", tools=(WEATHER,),
                                                       tool_choice="required"))]
    await model.aclose()
    pieces = [e for e in events if isinstance(e, ToolCallDelta)]
    assert pieces[0] == ToolCallDelta(0, "call_9", "get_weather", "")
    assert [p.id for p in pieces[1:]] == [None, None]
    final = events[-1]
    assert isinstance(final, Completion)
    assert final.tool_calls == (ToolCall("call_9", "get_weather", '{"city":"Rome"}'),)
    assert final.finish_reason == "tool_calls"


@pytest.mark.server
async def test_llama_server_forced_tool_call_and_logprobs(llama_server: LlamaServer) -> None:
    model = OpenAIModel("srv", model_id=llama_server.model, base_url=llama_server.base_url,
                        api_key="none", params=Params(temperature=0, max_tokens=40))
    try:
        out = await model.complete(Request.of("What is the weather in Paris?", tools=(WEATHER,),
                                              tool_choice=ForcedTool("get_weather")))
        assert out.finish_reason == "tool_calls"
        (call,) = out.tool_calls
        assert call.name == "get_weather" and isinstance(call.args(), dict)
        lp = await model.complete(Request.of("Say yes.", logprobs=True, top_logprobs=2,
                                             max_tokens=3))
        assert lp.logprobs and all(len(t.top) == 2 for t in lp.logprobs)
        assert all(t.logprob <= 0 for t in lp.logprobs)
    finally:
        await model.aclose()
