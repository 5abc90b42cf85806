"""Tools, tool results, image parts, logprobs and the Responses API through the gateway,
driven by the official openai SDK over HTTP (scripted and function models), and the
wire defects: refused fields, strict booleans, one text limit, content types, a body
deadline, clients that leave, and /metrics that made-up names cannot grow."""

from __future__ import annotations

import json
import logging
import random
import socket
import string
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from chorus.config.schema import GatewayConfig
from chorus.core.types import Completion, ImagePart, Request, TokenLogprob, ToolCall
from chorus.gateway import Gateway, create_app
from chorus.gateway.chat_request import FIELDS, MAX_TEXT_CHARS
from chorus.patterns.fallback import Fallback
from chorus.providers.function import FunctionModel
from chorus.providers.scripted import ScriptedModel
from tests.gateway.conftest import serving

TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}}
ASK = [{"role": "user", "content": "Weather in Paris?"}]


class Models:
    def __init__(self) -> None:
        self.agent = ScriptedModel("agent", replies=[
            ToolCall("call_1", "get_weather", '{"city": "Paris"}'), "Sunny in Paris."],
            cycle=True)
        self.seen: list[Request] = []

        def scored(request: Request) -> Completion:
            self.seen.append(request)
            return Completion("yes", "scored", logprobs=(
                TokenLogprob("yes", -0.1, (("yes", -0.1), ("no", -2.5))),))

        self.scored = FunctionModel("scored", scored, thread=False)
        self.text_only = ScriptedModel("text_only", default="words", accepts=["tools"])
        self.vision = FunctionModel("vision", lambda r: self.seen.append(r) or "a cat",
                                    thread=False)
        self.either = Fallback("either", [self.text_only, self.vision], cooldown_s=0)


@pytest.fixture
def models() -> Models:
    return Models()


@pytest.fixture
def url(models: Models) -> Iterator[str]:
    gw = Gateway({"agent": models.agent, "scored": models.scored,
                  "text_only": models.text_only, "either": models.either},
                 settings=GatewayConfig(timeout_s=2))
    with serving(create_app(gw)) as base:
        yield base


def sdk(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)


def test_an_agent_loop_round_trips_tool_calls_and_results(url: str, models: Models) -> None:
    c = sdk(url)
    first = c.chat.completions.create(model="agent", messages=ASK, tools=[TOOL],
                                      tool_choice="required")
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.id == "call_1" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    history = [*ASK, choice.message.model_dump(exclude_none=True),
               {"role": "tool", "tool_call_id": call.id, "content": "sunny, 24C"}]
    second = c.chat.completions.create(model="agent", messages=history, tools=[TOOL])
    assert second.choices[0].message.content == "Sunny in Paris."
    seen = models.agent.calls[-1]
    assert seen.messages[1].tool_calls == (ToolCall("call_1", "get_weather",
                                                    '{"city": "Paris"}'),)
    assert seen.messages[2].role == "tool" and seen.messages[2].tool_call_id == "call_1"
    assert seen.params.tools[0].name == "get_weather"  # type: ignore[index, union-attr]
    assert models.agent.calls[0].params.tool_choice == "required"


def test_streamed_tool_calls_arrive_as_delta_tool_calls(url: str) -> None:
    stream = sdk(url).chat.completions.create(model="agent", messages=ASK, tools=[TOOL],
                                              tool_choice="required", stream=True)
    chunks = list(stream)
    pieces = [d for ch in chunks if ch.choices for d in ch.choices[0].delta.tool_calls or ()]
    assert pieces and pieces[0].id == "call_1" and pieces[0].function.name == "get_weather"
    assert json.loads("".join(p.function.arguments or "" for p in pieces)) == {"city": "Paris"}
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "tool_calls"


def test_logprobs_with_top_alternatives(url: str, models: Models) -> None:
    r = sdk(url).chat.completions.create(model="scored", messages=ASK, logprobs=True,
                                         top_logprobs=2)
    lp = r.choices[0].logprobs
    assert lp is not None and lp.content is not None
    assert lp.content[0].token == "yes" and lp.content[0].logprob == -0.1
    assert [t.token for t in lp.content[0].top_logprobs] == ["yes", "no"]
    assert models.seen[-1].params.logprobs is True and models.seen[-1].params.top_logprobs == 2
    with pytest.raises(openai.BadRequestError, match="top_logprobs"):
        sdk(url).chat.completions.create(model="scored", messages=ASK, top_logprobs=2)


IMAGE = [{"role": "user", "content": [
    {"type": "text", "text": "What is this?"},
    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]


def test_an_image_to_a_text_only_model_is_refused_before_any_call(url: str,
                                                                 models: Models) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        sdk(url).chat.completions.create(model="text_only", messages=IMAGE)  # type: ignore[arg-type]
    assert "images" in str(info.value) and "either" in str(info.value)
    assert models.text_only.calls == []


def test_a_fallback_skips_the_child_without_images_and_says_so(url: str,
                                                               models: Models) -> None:
    r = httpx.post(f"{url}/v1/chat/completions", json={
        "model": "either", "messages": IMAGE, "chorus": {"trace": True}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["choices"][0]["message"]["content"] == "a cat"
    skipped = body["chorus"]["trace"]["attributes"]["skipped"]
    assert skipped[0]["model"] == "text_only" and "images" in skipped[0]["reason"]
    assert models.text_only.calls == []
    assert models.seen[-1].messages[0].images == (ImagePart("data:image/png;base64,iVBORw0KGgo="),)


@pytest.mark.parametrize(("extra", "named"), [
    ({"frequency_penalty": 0.5}, "frequency_penalty"),
    ({"logit_bias": {"50256": -100}}, "logit_bias"),
    ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
    ({"functions": [{"name": "f"}]}, "functions"),
    ({"not_a_field": 1}, "not_a_field"),
    ({"stream": "yes"}, "stream"),
    ({"logprobs": "true"}, "logprobs"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
     "tool_choice"),
    ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools"),
    ({"n": 2}, "n"),
])
def test_fields_chorus_does_not_do_are_refused_by_name(url: str, extra: dict[str, Any],
                                                      named: str) -> None:
    r = httpx.post(f"{url}/v1/chat/completions", json={"model": "agent", "messages": ASK,
                                                        **extra})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert named in err["message"] and (err["param"] or "").startswith(named)


def test_several_choices_are_refused_with_what_to_do_instead(url: str) -> None:
    r = httpx.post(f"{url}/v1/chat/completions", json={"model": "agent", "messages": ASK,
                                                        "n": 3})
    err = r.json()["error"]
    assert (r.status_code, err["code"]) == (400, "unsupported_field"), r.text
    assert err["message"].startswith("n: chorus does not support it (1 only: one choice "
                                     "per request; for more, send it again or serve a "
                                     "fanout or vote system)")
    ok = httpx.post(f"{url}/v1/chat/completions", json={"model": "agent", "messages": ASK,
                                                         "n": 1})
    assert ok.status_code == 200, ok.text


def test_harmless_values_of_refused_fields_pass(url: str) -> None:
    r = httpx.post(f"{url}/v1/chat/completions", json={
        "model": "agent", "messages": ASK, "frequency_penalty": 0, "presence_penalty": 0.0,
        "store": False, "modalities": ["text"], "user": "u1", "metadata": {"a": "b"}})
    assert r.status_code == 200, r.text


def test_every_field_of_the_table_is_in_the_readme() -> None:
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for name, what in FIELDS.items():
        assert f"| `{name}` | {what} |" in readme, name


def test_one_text_limit_for_a_string_and_for_parts(url: str) -> None:
    big = "a" * (MAX_TEXT_CHARS + 1)
    as_string = httpx.post(f"{url}/v1/chat/completions", json={
        "model": "agent", "messages": [{"role": "user", "content": big}]})
    as_parts = httpx.post(f"{url}/v1/chat/completions", json={
        "model": "agent", "messages": [{"role": "user", "content": [
            {"type": "text", "text": big[:MAX_TEXT_CHARS // 2]},
            {"type": "text", "text": big[MAX_TEXT_CHARS // 2:]}]}]})
    for r in (as_string, as_parts):
        assert r.status_code == 400
        assert "at most 1,000,000 characters of text per message" in r.json()["error"]["message"]


def test_a_body_that_is_not_json_by_its_content_type_is_refused(url: str) -> None:
    r = httpx.post(f"{url}/v1/chat/completions", content=json.dumps(
        {"model": "agent", "messages": ASK}), headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "application/json" in r.json()["error"]["message"]


def _raw(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def test_a_slow_body_gets_408_within_the_deadline(url: str) -> None:
    with _raw(url) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                  b"content-type: application/json\r\ncontent-length: 100\r\n\r\n{\"mo")
        t0 = time.monotonic()
        answer = s.recv(4096)
        assert b" 408 " in answer and time.monotonic() - t0 < 5


def test_a_client_that_leaves_mid_body_is_a_note_not_a_traceback(
        url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with _raw(url) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                  b"content-type: application/json\r\ncontent-length: 100\r\n\r\n{\"mo")
        time.sleep(0.2)
    deadline = time.monotonic() + 5
    while "disconnected" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "disconnected before its request was read" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "Traceback" not in caplog.text


def test_made_up_model_names_do_not_grow_metrics(url: str) -> None:
    before = len(httpx.get(f"{url}/metrics").text)
    for _ in range(200):
        name = "".join(random.choices(string.ascii_letters, k=120))
        httpx.post(f"{url}/v1/chat/completions", json={"model": name, "messages": ASK})
    text = httpx.get(f"{url}/metrics").text
    assert len(text) - before < 2_000
    assert 'chorus_gateway_requests_total{endpoint="chat",system="",model="",status="404"} 200' \
        in text


# -- the Responses API ---------------------------------------------------------------------

def test_responses_text_and_instructions(url: str, models: Models) -> None:
    r = sdk(url).responses.create(model="scored", input="Say yes.", instructions="Be brief.")
    assert r.output_text == "yes" and r.status == "completed"
    seen = models.seen[-1]
    assert [m.role for m in seen.messages] == ["system", "user"]


def test_responses_function_calls_round_trip(url: str, models: Models) -> None:
    c = sdk(url)
    tool = {"type": "function", "name": "get_weather", "parameters": TOOL["function"][
        "parameters"]}
    first = c.responses.create(model="agent", input="Weather in Paris?", tools=[tool],  # type: ignore[list-item]
                               tool_choice={"type": "function", "name": "get_weather"})
    (call,) = [o for o in first.output if o.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    second = c.responses.create(model="agent", tools=[tool], input=[  # type: ignore[list-item]
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name,
         "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}])
    assert second.output_text == "Sunny in Paris."
    seen = models.agent.calls[-1]
    assert seen.messages[1].tool_calls[0].id == call.call_id
    assert seen.messages[2].role == "tool" and seen.messages[2].content == "sunny"


def test_responses_stream_text_and_calls(url: str) -> None:
    c = sdk(url)
    with c.responses.stream(model="agent", input="Weather?", tools=[{  # type: ignore[list-item]
            "type": "function", "name": "get_weather",
            "parameters": TOOL["function"]["parameters"]}], tool_choice="required") as s:
        kinds = [e.type for e in s]
        final = s.get_final_response()
    assert "response.function_call_arguments.delta" in kinds and kinds[-1] == "response.completed"
    (call,) = [o for o in final.output if o.type == "function_call"]
    assert json.loads(call.arguments) == {"city": "Paris"}
    with c.responses.stream(model="agent", input="Weather?") as s:
        deltas = [e.delta for e in s if e.type == "response.output_text.delta"]
        assert "".join(deltas) == "Sunny in Paris." == s.get_final_response().output_text


def test_responses_refuse_what_needs_storage(url: str) -> None:
    for extra in ({"previous_response_id": "resp_1"}, {"store": True}):
        r = httpx.post(f"{url}/v1/responses", json={"model": "agent", "input": "hi", **extra})
        assert r.status_code == 400 and next(iter(extra)) in r.json()["error"]["message"]


def test_the_openapi_document_covers_the_new_fields(url: str) -> None:
    doc = httpx.get(f"{url}/openapi.json").json()
    chat = doc["components"]["schemas"]["ChatRequest"]["properties"]
    for name in ("tools", "tool_choice", "parallel_tool_calls", "logprobs", "top_logprobs"):
        assert name in chat, name
    assert "/v1/responses" in doc["paths"]
    assert "ImagePart" in doc["components"]["schemas"]
    assert "FunctionCallItem" in doc["components"]["schemas"]


def test_an_integer_beyond_64_bits_is_echoed_not_a_server_error(url: str) -> None:
    # A tool's schema may hold any JSON number; the Responses API echoes the tools back,
    # and orjson cannot write integers past 64 bits (the fuzzer found the 500).
    huge = 51496590591103864930304
    tool = {"type": "function", "name": "f",
            "parameters": {"type": "object", "x-big": [huge, "\u00e9"]}}
    r = httpx.post(f"{url}/v1/responses",
                   json={"model": "scored", "input": "hi", "tools": [tool]}, timeout=10)
    assert r.status_code == 200, r.text
    echoed = r.json()["tools"][0]["parameters"]["x-big"]
    assert echoed == [huge, "\u00e9"]
