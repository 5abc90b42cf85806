"""Tool history across providers: a fallback that moves a conversation with tool calls
from an OpenAI-compatible model to an Anthropic one, or back, sends ids the new provider
accepts, each tool result still paired with its call. The Anthropic side answers with a
recorded exchange; the OpenAI-compatible side is a server on 127.0.0.1 that refuses what
OpenAI's API refuses."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chorus.core.types import Message, Params, Request, Tool, ToolCall
from chorus.patterns.fallback import Fallback, MemoryCooldowns
from chorus.providers._tool_ids import ANTHROPIC, OPENAI, rewrite
from chorus.providers.anthropic import AnthropicModel
from chorus.providers.openai import OpenAIModel
from tests.faults.fault_server import FaultServer

FIXTURES = Path(__file__).parent.parent / "fixtures" / "anthropic"
WEATHER = Tool("get_weather", "The weather in a city",
               {"type": "object", "properties": {"city": {"type": "string"}},
                "required": ["city"]})


def history(first: str, second: str, third: str) -> Request:
    """Two assistant turns with tool calls (ids as their models made them) and their
    results, then a new question."""
    return Request((
        Message("user", "Weather in Paris and Nice?"),
        Message("assistant", "", tool_calls=(
            ToolCall(first, "get_weather", '{"city": "Paris"}'),
            ToolCall(second, "get_weather", '{"city": "Nice"}'))),
        Message("tool", "sunny, 24C", tool_call_id=first),
        Message("tool", "rain, 18C", tool_call_id=second),
        Message("user", "And Lyon?"),
        Message("assistant", "", tool_calls=(ToolCall(third, "get_weather",
                                                      '{"city": "Lyon"}'),)),
        Message("tool", "cloudy, 20C", tool_call_id=third),
        Message("user", "And Lille?"),
    ), Params(tools=(WEATHER,)))


@pytest.fixture(scope="module")
def faults() -> Iterator[FaultServer]:
    with FaultServer() as fs:
        yield fs


def recorded(name: str, sent: list[dict[str, Any]]) -> httpx.MockTransport:
    fixture = json.loads((FIXTURES / name).read_text())["response"]

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(fixture["status"], headers=fixture["headers"],
                              content=json.dumps(fixture["json"]).encode())
    return httpx.MockTransport(answer)


async def test_openai_compatible_to_anthropic_rewrites_ids_it_would_refuse(
        faults: FaultServer) -> None:
    # Ids as OpenAI-compatible servers make them: a dotted one, and "call_0" in each turn.
    request = history("functions.get_weather:0", "call_0", "call_0")
    sent: list[dict[str, Any]] = []
    primary = OpenAIModel("gpt", model_id="503", base_url=faults.base_url, api_key="none")
    claude = AnthropicModel("claude", model_id="claude-sonnet-4-20250514", api_key="k",
                            transport=recorded("tool_use.json", sent))
    out = await Fallback("fb", [primary, claude], cooldowns=MemoryCooldowns()).complete(request)
    await primary.aclose()
    await claude.aclose()
    assert out.model == "claude" and out.tool_calls[0].name == "get_weather"
    (body,) = sent
    uses = [b["id"] for m in body["messages"] if m["role"] == "assistant"
            for b in m["content"] if b["type"] == "tool_use"]
    results = [b["tool_use_id"] for m in body["messages"] if m["role"] == "user"
               and isinstance(m["content"], list) for b in m["content"]
               if b["type"] == "tool_result"]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", i) for i in uses)
    assert len(set(uses)) == 3 and results == uses  # unique, each result with its call
    assert uses[1] == "call_0"  # an id Anthropic accepts is kept


async def test_anthropic_to_openai_compatible_rewrites_ids_it_would_refuse(
        faults: FaultServer) -> None:
    long = "tooluse_" + "x" * 56  # over OpenAI's 40 characters
    request = history("toolu_01A09q90qw90lq917835lq9", long, "")
    strict = OpenAIModel("gpt", model_id="strict-tools", base_url=faults.base_url,
                         api_key="none")
    sent: list[dict[str, Any]] = []
    claude = AnthropicModel("claude", model_id="claude-sonnet-4-20250514", api_key="k",
                            transport=recorded("error_overloaded.json", sent))
    before = faults.count("strict-tools")
    out = await Fallback("fb", [claude, strict], cooldowns=MemoryCooldowns()).complete(request)
    await strict.aclose()
    await claude.aclose()
    assert out.model == "gpt" and out.text  # the strict server took the history
    assert len(sent) == 1 and faults.count("strict-tools") == before + 1
    seen = faults.seen[-1].messages
    ids = [c["id"] for m in seen if m.get("tool_calls") for c in m["tool_calls"]]
    assert ids[0] == "toolu_01A09q90qw90lq917835lq9" and all(0 < len(i) <= 40 for i in ids)
    assert [m["tool_call_id"] for m in seen if m["role"] == "tool"] == ids


async def test_the_same_history_unrewritten_is_refused(faults: FaultServer) -> None:
    # What the rewrite prevents: the strict server refuses the raw history.
    request = history("toolu_01A09q90qw90lq917835lq9", "tooluse_" + "x" * 56, "")
    raw = [{"role": m.role, "content": m.content, **(
        {"tool_calls": [{"id": c.id, "type": "function", "function": {
            "name": c.name, "arguments": c.arguments}} for c in m.tool_calls]}
        if m.tool_calls else {}), **(
        {"tool_call_id": m.tool_call_id} if m.tool_call_id is not None else {})}
        for m in request.messages]
    r = httpx.post(f"{faults.base_url}/chat/completions",
                   json={"model": "strict-tools", "messages": raw})
    assert r.status_code == 400 and "maximum length 40" in r.text


def test_a_rewrite_leaves_accepted_ids_and_plain_messages_alone() -> None:
    plain = Request.of("hi").messages
    assert rewrite(plain, ANTHROPIC) is plain
    request = history("call_a", "call_b", "call_c")
    assert list(rewrite(request.messages, OPENAI)) == list(request.messages)
    assert list(rewrite(request.messages, ANTHROPIC)) == list(request.messages)
