"""Streaming does not change what an answer costs: for each provider, the same request
streamed or not has the same usage (prompt-cache counts included) and the same cost."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.faults.fault_server import FaultServer

from chorus.core.model import Model
from chorus.core.pricing import Price, lookup_price
from chorus.core.types import Completion, Request, Usage
from chorus.providers.anthropic import AnthropicModel
from chorus.providers.local import LocalModel
from chorus.providers.openai import OpenAIModel
from chorus.providers.scripted import ScriptedModel

FIXTURES = Path(__file__).parent.parent / "fixtures" / "anthropic"
PRICE = Price(2.0, 8.0, cached_input=0.5, cache_write=2.5)


async def both(model: Model, request: Request) -> tuple[Completion, Completion]:
    whole = await model.complete(request)
    final = [e async for e in model.stream(request)][-1]
    assert isinstance(final, Completion)
    return whole, final


@pytest.fixture(scope="module")
def faults() -> Iterator[FaultServer]:
    with FaultServer() as fs:
        yield fs


async def test_openai_compatible_cached_tokens_cost_the_same_streamed(
        faults: FaultServer) -> None:
    model = OpenAIModel("m", model_id="cached", base_url=faults.base_url, api_key="none",
                        price=PRICE)
    request = Request.of("What is the capital of France, the country in Europe?")
    whole, streamed = await both(model, request)
    await model.aclose()
    assert whole.usage == streamed.usage and whole.usage.cached_input_tokens > 0
    u = whole.usage
    expected = ((u.input_tokens - u.cached_input_tokens) * 2.0 + u.cached_input_tokens * 0.5
                + u.output_tokens * 8.0) / 1e6
    assert whole.cost_usd == pytest.approx(expected) == streamed.cost_usd


def _with_cache(fixture: dict[str, Any]) -> dict[str, Any]:
    """A recorded exchange with a prompt-cache read and write in its usage, where
    Anthropic reports them (the message's usage, or the stream's message_start), and the
    same plain counts in both recordings (25 in, 15 out: the stream's own)."""
    cache = {"input_tokens": 25, "cache_read_input_tokens": 2048,
             "cache_creation_input_tokens": 100}
    response = json.loads(json.dumps(fixture["response"]))
    if "sse" in response:
        lines = []
        for line in response["sse"]:
            if '"message_start"' in line:
                data = json.loads(line.removeprefix("data: "))
                data["message"]["usage"].update(cache)
                line = "data: " + json.dumps(data)
            lines.append(line)
        response["sse"] = lines
    else:
        response["json"]["usage"].update(cache, output_tokens=15)
    return response


async def test_anthropic_cache_reads_and_writes_cost_the_same_streamed() -> None:
    recorded = {name: _with_cache(json.loads((FIXTURES / f"{name}.json").read_text()))
                for name in ("message", "message_stream")}

    def answer(request: httpx.Request) -> httpx.Response:
        r = recorded["message_stream" if json.loads(request.content).get("stream")
                     else "message"]
        content = ("\n".join(r["sse"]) + "\n") if "sse" in r else json.dumps(r["json"])
        return httpx.Response(r["status"], headers=r["headers"], content=content.encode())

    model = AnthropicModel("claude", model_id="claude-sonnet-4-20250514", api_key="k",
                           transport=httpx.MockTransport(answer))
    whole, streamed = await both(model, Request.of("Hi"))
    await model.aclose()
    assert whole.usage == streamed.usage == Usage(25 + 2048 + 100, 15, 2048, 100)
    price = lookup_price("claude-sonnet-4-20250514")
    assert price is not None and price.cached_input == 0.30
    assert whole.cost_usd == streamed.cost_usd == pytest.approx(
        (25 * 3.0 + 2048 * 0.30 + 100 * 3.75 + 15 * 15.0) / 1e6)


@pytest.mark.local
async def test_local_costs_the_same_streamed() -> None:
    model = LocalModel("priced", "smollm2-135m", price=PRICE)
    ok, why = model.usable()
    if not ok:
        pytest.skip(why)
    whole, streamed = await both(model, Request.of("Name a fruit.", temperature=0,
                                                   max_tokens=12))
    assert (whole.text, whole.usage) == (streamed.text, streamed.usage)
    assert whole.cost_usd == streamed.cost_usd > 0


async def test_scripted_costs_the_same_streamed() -> None:
    model = ScriptedModel("s", default="Paris is the capital.", usage=Usage(100, 5, 60),
                          price=PRICE)
    whole, streamed = await both(model, Request.of("q"))
    assert whole.usage == streamed.usage and whole.cost_usd == streamed.cost_usd
    assert whole.cost_usd == pytest.approx((40 * 2.0 + 60 * 0.5 + 5 * 8.0) / 1e6)
