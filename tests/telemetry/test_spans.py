"""Spans of real pattern runs, caught in memory: the tree, the GenAI attributes, cost,
decisions, failures, content switching, and the traceparent sent upstream and taken in
by the gateway."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse
from starlette.routing import Route

from chorus import telemetry
from chorus.config import Config
from chorus.core import instrument
from chorus.core.errors import AllModelsFailed
from chorus.core.model import call, stream_or_complete
from chorus.core.types import Completion, Request
from chorus.gateway import Gateway, create_app
from chorus.providers.openai import OpenAIModel
from tests.gateway.conftest import serving
from tests.telemetry._systems import SYSTEMS_YAML

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    telemetry.enable(span_exporter=exporter)
    try:
        yield exporter
    finally:
        telemetry.disable()


def finished(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    telemetry.flush()
    return list(exporter.get_finished_spans())


def by_name(spans: list[ReadableSpan]) -> dict[str, ReadableSpan]:
    return {s.name: s for s in spans}


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def run(system: str, prompt: str = "What is 2+2?") -> Completion:
    return await call(Config.from_text(SYSTEMS_YAML).get(system), Request.of(prompt))


async def test_a_router_exports_its_tree_with_genai_attributes_cost_and_route(
        spans: InMemorySpanExporter) -> None:
    answer = await run("router")
    got = by_name(finished(spans))
    assert set(got) == {"router router", "chat clf", "chat solver"}
    root, clf, solver = got["router router"], got["chat clf"], got["chat solver"]
    assert root.parent is None
    assert parent_of(clf) == parent_of(solver) == root.context.span_id
    assert {s.context.trace_id for s in got.values()} == {root.context.trace_id}
    a = solver.attributes or {}
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "scripted"
    assert a["gen_ai.request.model"] == a["gen_ai.response.model"] == "solver"
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (12, 2)
    assert a["gen_ai.request.temperature"] == 0 and a["gen_ai.request.max_tokens"] == 8
    assert tuple(a["gen_ai.response.finish_reasons"]) == ("stop",)  # type: ignore[arg-type]
    assert a["chorus.cost_usd"] == pytest.approx((12 * 3.0 + 2 * 15.0) / 1e6)
    r = root.attributes or {}
    assert r["chorus.router.route"] == "math"
    assert r["chorus.router.model"] == "solver"
    assert r["chorus.cost_usd"] == pytest.approx(answer.cost_usd)
    assert answer.cost_usd == pytest.approx(
        (clf.attributes or {})["chorus.cost_usd"] + a["chorus.cost_usd"])  # type: ignore[operator]
    assert r["chorus.system"] == a["chorus.system"] == "router"
    # Content is off by default: no prompt or answer text anywhere.
    assert not any(k.startswith(("gen_ai.input", "gen_ai.output", "input.", "output."))
                   for s in got.values() for k in (s.attributes or {}))


async def test_a_vote_records_each_voter_and_the_tally_and_winner(
        spans: InMemorySpanExporter) -> None:
    answer = await run("vote", "Capital of France?")
    got = by_name(finished(spans))
    vote = got["vote vote"]
    voters = [got[f"chat {m}"] for m in "abc"]
    assert all(parent_of(v) == vote.context.span_id for v in voters)
    a = vote.attributes or {}
    assert a["chorus.vote.winner"] == "paris" and answer.text == "Paris"
    tally = json.loads(str(a["chorus.vote.tally"]))
    assert tally["paris"]["count"] == 2 and tally["lyon"]["models"] == ["c"]
    assert a["chorus.cost_usd"] == pytest.approx(answer.cost_usd) and answer.cost_usd > 0


async def test_a_failing_fallback_sets_error_status_on_every_span(
        spans: InMemorySpanExporter) -> None:
    with pytest.raises(AllModelsFailed):
        await run("fallback")
    got = by_name(finished(spans))
    fb, d1, d2 = got["fallback fallback"], got["chat down1"], got["chat down2"]
    assert parent_of(d1) == parent_of(d2) == fb.context.span_id
    for span, kind in ((fb, "AllModelsFailed"), (d1, "ServerError"), (d2, "ProviderTimeout")):
        assert span.status.status_code is StatusCode.ERROR
        assert (span.attributes or {})["error.type"] == kind
        assert [e.name for e in span.events] == ["exception"]
    assert "scripted server_error" in (d1.status.description or "")
    children = json.loads(str((fb.attributes or {})["chorus.error.children"]))
    assert set(children) == {"down1", "down2"}


async def test_a_cache_hit_records_money_saved_and_the_budget_what_is_left(
        spans: InMemorySpanExporter) -> None:
    model = Config.from_text(SYSTEMS_YAML).get("cached")
    first = await call(model, Request.of("What is 2+2?"))
    await call(model, Request.of("What is 2+2?"))
    got = finished(spans)
    caches = [s.attributes or {} for s in got if s.name == "cache cached.inner"]
    assert [c["chorus.cache.hit"] for c in caches] == [False, True]
    assert caches[1]["chorus.cache.saved_usd"] == pytest.approx(first.cost_usd)
    budgets = [s.attributes or {} for s in got if s.name == "budget cached"]
    assert budgets[0]["chorus.budget.left_usd"] == pytest.approx(0.01 - first.cost_usd)
    assert budgets[1]["chorus.budget.left_usd"] == pytest.approx(0.01)  # the hit was free
    assert [s.name for s in got].count("chat solver") == 1


async def test_content_is_recorded_only_when_switched_on() -> None:
    exporter = InMemorySpanExporter()
    telemetry.enable(span_exporter=exporter, content=True)
    try:
        await run("router", "What is 2+2?")
        solver = by_name(finished(exporter))["chat solver"].attributes or {}
    finally:
        telemetry.disable()
    msgs = json.loads(str(solver["gen_ai.input.messages"]))
    assert msgs == [{"role": "user", "parts": [{"type": "text", "content": "What is 2+2?"}]}]
    out = json.loads(str(solver["gen_ai.output.messages"]))
    assert out[0]["parts"][0]["content"] == "4"


async def test_a_streamed_call_is_one_span_whose_children_nest_under_it(
        spans: InMemorySpanExporter) -> None:
    model = Config.from_text(SYSTEMS_YAML).get("vote")
    events = [e async for e in stream_or_complete(model, Request.of("Capital?"))]
    assert isinstance(events[-1], Completion)
    got = by_name(finished(spans))
    assert parent_of(got["chat a"]) == got["vote vote"].context.span_id


async def test_nothing_is_watched_once_disabled(spans: InMemorySpanExporter) -> None:
    telemetry.disable()
    assert instrument.active() is None and not telemetry.enabled()
    await run("router")
    assert finished(spans) == []


# -- propagation ----------------------------------------------------------------------


def _openai_upstream(seen: list[dict[str, str]]) -> Starlette:
    async def chat(request: HttpRequest) -> JSONResponse:
        seen.append(dict(request.headers))
        return JSONResponse({
            "id": "x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "Paris"}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}})
    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


async def test_an_openai_compatible_upstream_gets_the_model_calls_traceparent(
        spans: InMemorySpanExporter) -> None:
    seen: list[dict[str, str]] = []
    with serving(_openai_upstream(seen)) as url:
        model = OpenAIModel("up", model_id="m", base_url=url + "/v1", api_key_env=None)
        try:
            await call(model, Request.of("Capital of France?"))
        finally:
            await model.aclose()
    (span,) = finished(spans)
    version, trace_id, span_id, flags = seen[0]["traceparent"].split("-")
    assert (trace_id, span_id) == (f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}")
    assert version == "00" and int(flags, 16) & 1  # sampled
    assert (span.attributes or {})["server.address"] == "127.0.0.1"


async def test_an_anthropic_upstream_gets_a_traceparent_too(
        spans: InMemorySpanExporter) -> None:
    from tests.providers.test_anthropic import Replay

    replay = Replay("message.json")
    await call(replay.model(), Request.of("Hello"))
    (span,) = finished(spans)
    sent = replay.requests[0].headers["traceparent"]
    assert sent.split("-")[2] == f"{span.context.span_id:016x}"


GATEWAY_YAML = """
models:
  fast: {provider: scripted, default: Paris, usage: {input_tokens: 10, output_tokens: 5},
         price: {input: 1000, output: 2000}}
  broken: {provider: scripted, fail_with: server_error, fail_times: -1}
systems:
  safe: {kind: fallback, models: [broken, fast], cooldown_s: 0}
"""


def _ask(url: str, headers: dict[str, str], **body: Any) -> httpx.Response:
    return httpx.post(url + "/v1/chat/completions", headers=headers, timeout=30, json={
        "model": "safe", "messages": [{"role": "user", "content": "Capital?"}], **body})


@pytest.mark.parametrize("stream", [False, True])
async def test_the_gateway_continues_the_callers_trace(spans: InMemorySpanExporter,
                                                       stream: bool) -> None:
    gw = Gateway.from_config(Config.from_text(GATEWAY_YAML))
    caller = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
    with serving(create_app(gw)) as url:
        got = await asyncio.to_thread(_ask, url, {"traceparent": caller}, stream=stream)
        assert got.status_code == 200
        plain = await asyncio.to_thread(_ask, url, {})
        assert plain.status_code == 200
    every = finished(spans)
    mine = [s for s in every if f"{s.context.trace_id:032x}" == TRACE_ID]
    root = by_name(mine)["fallback safe"]
    assert root.parent is not None and root.parent.span_id == 0x00f067aa0ba902b7
    assert {s.name for s in mine} == {"fallback safe", "chat broken", "chat fast"}
    # A request without a traceparent starts a trace of its own.
    assert len({s.context.trace_id for s in every}) == 2
