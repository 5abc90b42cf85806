"""AnthropicModel against recorded Messages API exchanges replayed through MockTransport."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from chorus.config.builder import Config
from chorus.core.errors import (
    AuthenticationError,
    ContextLengthError,
    MalformedResponse,
    ModelNotFoundError,
    ProviderError,
    RateLimitError,
    ServerError,
    StreamCut,
)
from chorus.core.model import StreamEvent
from chorus.core.pricing import lookup_price
from chorus.core.structured import ask_json
from chorus.core.types import Completion, Message, Params, Request, TextDelta, Usage
from chorus.providers.anthropic import AnthropicModel, messages_payload, parse_message

FIXTURES = Path(__file__).parent.parent / "fixtures" / "anthropic"


class Replay:
    """Answers with one recorded response and keeps the requests it was sent."""

    def __init__(self, name: str) -> None:
        self.fixture: dict[str, Any] = json.loads((FIXTURES / name).read_text())
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        recorded = self.fixture["response"]
        if "sse" in recorded:
            content = ("\n".join(recorded["sse"]) + "\n").encode()
        else:
            content = json.dumps(recorded["json"]).encode()
        return httpx.Response(recorded["status"], headers=recorded["headers"], content=content)

    def model(self, **kwargs: Any) -> AnthropicModel:
        return AnthropicModel("claude", model_id=self.fixture["request"]["json"]["model"],
                              api_key="sk-ant-test", transport=httpx.MockTransport(self),
                              **kwargs)

    def assert_sent_as_recorded(self) -> None:
        (sent,) = self.requests
        expected = self.fixture["request"]
        assert sent.method == expected["method"]
        assert sent.url.path == expected["path"]
        for header, value in expected["headers"].items():
            assert sent.headers[header] == value
        assert json.loads(sent.content) == expected["json"]


async def collect(model: AnthropicModel, request: Request) -> list[StreamEvent]:
    return [event async for event in model.stream(request)]


async def test_message_sends_system_apart_and_reports_usage_and_cost() -> None:
    replay = Replay("message.json")
    model = replay.model()
    request = Request(
        (Message("system", "Answer in one word."),
         Message("user", "What is the capital of France?")),
        Params(temperature=0.2, max_tokens=200, stop=("\n\n",)),
    )
    try:
        out = await model.complete(request)
    finally:
        await model.aclose()
    replay.assert_sent_as_recorded()
    assert replay.requests[0].url == "https://api.anthropic.com/v1/messages"
    assert out.text == "Paris"
    assert out.usage == Usage(21, 4)
    assert out.finish_reason == "stop"
    price = lookup_price("claude-sonnet-4-20250514")
    assert price is not None and out.cost_usd == pytest.approx(price.cost(Usage(21, 4)))
    assert out.trace is not None and out.trace.attributes["provider"] == "anthropic"


async def test_max_tokens_defaults_to_1024_and_length_stop_is_reported() -> None:
    replay = Replay("message_default_max_tokens.json")
    model = replay.model()
    request = Request((Message("user", "Count to three."), Message("assistant", "One, two,"),
                       Message("user", "Go on.")))
    try:
        out = await model.complete(request)
    finally:
        await model.aclose()
    replay.assert_sent_as_recorded()
    assert out.text == "three."
    assert out.finish_reason == "length"


async def test_stream_yields_text_deltas_then_the_completion_with_usage() -> None:
    replay = Replay("message_stream.json")
    model = replay.model()
    try:
        events = await collect(model, Request.of("Say hello.", system="Be brief.",
                                                 max_tokens=64))
    finally:
        await model.aclose()
    replay.assert_sent_as_recorded()
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    final = events[-1]
    assert deltas == ["Hello", " there!"]
    assert isinstance(final, Completion)
    assert final.text == "".join(deltas)
    assert final.usage == Usage(25, 15)
    assert final.finish_reason == "stop"


async def test_error_event_mid_stream_raises_from_the_error_tree() -> None:
    replay = Replay("stream_error.json")
    model = replay.model()
    seen: list[str] = []
    with pytest.raises(ServerError, match="Overloaded") as info:
        async for event in model.stream(Request.of("Tell me a story.")):
            if isinstance(event, TextDelta):
                seen.append(event.text)
    await model.aclose()
    assert seen == ["Once"]
    assert info.value.retryable


async def test_response_format_forces_one_tool_and_returns_its_input_as_json() -> None:
    replay = Replay("tool_answer.json")
    model = replay.model()
    schema = replay.fixture["request"]["json"]["tools"][0]["input_schema"]
    try:
        value, calls = await ask_json(model, Request.of("Largest city of France?"), schema)
    finally:
        await model.aclose()
    replay.assert_sent_as_recorded()
    assert value == {"city": "Paris", "population": 2102650}
    assert len(calls) == 1 and calls[0].finish_reason == "stop"
    assert calls[0].usage == Usage(402, 37)


async def test_streamed_tool_answer_joins_to_the_json_text() -> None:
    replay = Replay("tool_stream.json")
    model = replay.model()
    schema = replay.fixture["request"]["json"]["tools"][0]["input_schema"]
    try:
        events = await collect(model, Request.of("Largest city of France?",
                                                 response_format=schema))
    finally:
        await model.aclose()
    replay.assert_sent_as_recorded()
    final = events[-1]
    assert isinstance(final, Completion)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == final.text
    assert json.loads(final.text) == {"city": "Paris"}
    assert final.usage == Usage(380, 20)


def test_a_schema_that_is_not_an_object_is_wrapped_and_unwrapped() -> None:
    schema = {"type": "array", "items": {"type": "string"}, "maxItems": 3}
    payload = messages_payload("claude-3-haiku", Request.of("x", response_format=schema))
    tool_schema = payload["tools"][0]["input_schema"]
    assert tool_schema["type"] == "object" and tool_schema["properties"]["value"] == schema
    body = {"content": [{"type": "tool_use", "name": "answer", "input": {"value": ["a", "b"]}}],
            "stop_reason": "tool_use", "usage": {"input_tokens": 3, "output_tokens": 2}}
    text, usage, finish = parse_message(body, model="m", wrapped=True)
    assert json.loads(text) == ["a", "b"] and usage == Usage(3, 2) and finish == "stop"


@pytest.mark.parametrize(
    ("fixture", "error", "fragment"),
    [
        ("error_overloaded.json", ServerError, "(529)"),
        ("error_not_found.json", ModelNotFoundError, "claude-nope-1"),
        ("error_auth.json", AuthenticationError, "ANTHROPIC_API_KEY"),
        ("error_rate_limit.json", RateLimitError, "retry after 17s"),
        ("error_prompt_too_long.json", ContextLengthError, "shorten"),
    ],
)
async def test_error_bodies_map_to_the_error_tree(
    fixture: str, error: type[ProviderError], fragment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    replay = Replay(fixture)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    model = AnthropicModel("claude", model_id=replay.fixture["request"]["json"]["model"],
                           transport=httpx.MockTransport(replay))
    with pytest.raises(error) as info:
        await model.complete(Request.of("Hi"))
    await model.aclose()
    replay.assert_sent_as_recorded()
    message = str(info.value)
    assert "\n" not in message and fragment in message
    assert info.value.status_code == replay.fixture["response"]["status"]
    if isinstance(info.value, RateLimitError):
        assert info.value.retry_after == 17.0


async def test_missing_key_names_the_variable_and_sends_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    replay = Replay("message.json")
    model = AnthropicModel("claude", model_id="claude-3-haiku",
                           transport=httpx.MockTransport(replay))
    assert model.usable()[0] is False
    with pytest.raises(AuthenticationError, match="set the environment variable "
                                                  "ANTHROPIC_API_KEY"):
        await model.complete(Request.of("Hi"))
    assert replay.requests == []
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-later")  # read at call time
    assert model.usable() == (True, "ok")


async def test_non_json_answer_is_malformed_and_a_truncated_stream_is_cut() -> None:
    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>gateway</html>")

    model = AnthropicModel("claude", api_key="k", transport=httpx.MockTransport(html))
    with pytest.raises(MalformedResponse, match="not JSON"):
        await model.complete(Request.of("Hi"))
    await model.aclose()

    transcript = Replay("message_stream.json").fixture["response"]["sse"]
    cut = "\n".join(transcript[:12]) + "\n"  # message_start .. first delta, no message_stop

    def truncated(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, text=cut)

    model = AnthropicModel("claude", api_key="k", transport=httpx.MockTransport(truncated))
    with pytest.raises(StreamCut, match="message_stop") as info:
        await collect(model, Request.of("Hi"))
    partial = info.value.partial  # what was sent, priced, for a fallback's rescue
    assert partial is not None and partial.text and partial.usage.output_tokens > 0
    await model.aclose()


def test_yaml_builds_an_anthropic_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_CLAUDE_KEY", "sk-from-env")
    config = Config.from_text(
        "models:\n"
        "  claude:\n"
        "    provider: anthropic\n"
        "    model: claude-3-5-haiku-20241022\n"
        "    api_key: ${MY_CLAUDE_KEY}\n"
        "    timeout: 12\n"
        "    params: {max_tokens: 300}\n"
    )
    model = config.get("claude")
    assert isinstance(model, AnthropicModel)
    assert model.model_id == "claude-3-5-haiku-20241022"
    assert model._headers()["x-api-key"] == "sk-from-env"
    assert model.params.max_tokens == 300
    assert model.price_known
