"""The gateway driven by the official openai SDK (sync, async, streaming) on 127.0.0.1."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import openai
import pytest

from chorus.core.errors import GuardrailViolation, ServerError
from chorus.core.model import Model, StreamEvent
from chorus.core.types import Completion, Request, TextDelta
from chorus.gateway import Gateway, create_app
from chorus.providers.scripted import ScriptedModel
from tests.gateway.conftest import KEYS, serving

_open: list[openai.OpenAI] = []


def client(base_url: str, who: str = "alice", key: str | None = None) -> openai.OpenAI:
    """A sync SDK client for ``who``; closed after the test."""
    c = openai.OpenAI(base_url=f"{base_url}/v1", api_key=key or KEYS[who], max_retries=0)
    _open.append(c)
    return c


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _open:
        _open.pop().close()


def test_models_lists_systems_and_models(base_url: str) -> None:
    ids = {m.id for m in client(base_url).models.list()}
    assert {"safe", "fast", "broken", "slowpoke"} <= ids
    # bob may use `fast` only (embedders are listed for everyone).
    bobs = {m.id for m in client(base_url, "bob").models.list()}
    assert "fast" in bobs and "safe" not in bobs


def test_chat_sync_maps_params_and_reports(base_url: str, gateway: Gateway) -> None:
    raw = client(base_url).chat.completions.with_raw_response.create(
        model="fast", messages=[{"role": "developer", "content": "be brief"},
                                {"role": "user", "content": "the capital of France?"}],
        temperature=0.3, top_p=0.9, max_completion_tokens=7, stop=["\n"], seed=4,
        response_format={"type": "json_schema",
                         "json_schema": {"name": "a", "schema": {"type": "object"}}})
    done = raw.parse()
    assert done.choices[0].message.content == "Paris"
    assert done.usage is not None and done.usage.prompt_tokens == 10
    assert raw.headers["x-chorus-model"] == "fast"
    assert float(raw.headers["x-chorus-cost-usd"]) == pytest.approx(0.02)
    assert float(raw.headers["x-chorus-overhead-ms"]) >= 0
    assert raw.headers["x-chorus-decision"].startswith("model fast")
    extra = done.model_extra or {}
    assert extra["chorus"]["models"] == ["fast"] and "trace" not in extra["chorus"]
    seen = gateway.models["fast"]
    assert isinstance(seen, ScriptedModel)
    req = seen.calls[-1]
    assert req.messages[0].role == "system"
    p = req.params
    assert (p.temperature, p.top_p, p.max_tokens, p.stop, p.seed) == (0.3, 0.9, 7, ("\n",), 4)
    assert p.response_format == {"type": "object", "title": "a"}
    assert req.metadata == {"key": "alice", "tenant": "alice"}


def test_chat_trace_and_fallback_decision(base_url: str) -> None:
    raw = client(base_url).chat.completions.with_raw_response.create(
        model="safe", messages=[{"role": "user", "content": "hi"}],
        extra_body={"chorus": {"trace": True}})
    info = (raw.parse().model_extra or {})["chorus"]
    assert raw.headers["x-chorus-model"] == "fast"
    assert "answered=fast" in raw.headers["x-chorus-decision"]
    assert info["trace"]["kind"] == "fallback"
    assert [c["name"] for c in info["trace"]["children"]] == ["fast", "broken"]


async def test_chat_async(base_url: str) -> None:
    async with openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key=KEYS["alice"],
                                  max_retries=0) as aclient:
        done = await aclient.chat.completions.create(
            model="fast", messages=[{"role": "user", "content": "hello"}])
    assert done.choices[0].message.content == "hello from fast"


def test_stream_with_usage(base_url: str) -> None:
    stream = client(base_url).chat.completions.create(
        model="fast", messages=[{"role": "user", "content": "hello"}], stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "hello from fast"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 3
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 5
    assert (chunks[-1].model_extra or {})["chorus"]["model"] == "fast"


def test_stream_falls_back_before_the_first_token(base_url: str) -> None:
    r = httpx.post(f"{base_url}/v1/chat/completions", headers=_auth(),
                   json={"model": "safe", "stream": True,
                         "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200
    lines = [ln for ln in r.text.split("\n\n") if ln]
    assert lines[-1] == "data: [DONE]"
    body = [json.loads(ln[6:]) for ln in lines[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in body) \
        == "hello from fast"


def test_stream_error_before_first_token_is_a_plain_error(base_url: str) -> None:
    r = httpx.post(f"{base_url}/v1/chat/completions", headers=_auth(),
                   json={"model": "broken", "stream": True,
                         "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 502
    assert r.headers["content-type"] == "application/json"
    assert r.json()["error"]["code"] == "server_error"


class CutOff(Model):
    """Streams two words, then its upstream dies."""

    can_stream = True

    async def complete(self, request: Request) -> Completion:
        raise ServerError("connection reset mid-answer", model=self.name)

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        yield TextDelta("The answer")
        yield TextDelta(" is")
        raise ServerError("connection reset mid-answer", model=self.name)


class Blocked(Model):
    async def complete(self, request: Request) -> Completion:
        raise GuardrailViolation("pii", "an email address in the prompt")


def test_stream_cut_off_after_first_token_says_so() -> None:
    gw = Gateway({"cut": CutOff("cut"), "blocked": Blocked("blocked")})
    with serving(create_app(gw)) as url:
        r = httpx.post(f"{url}/v1/chat/completions", json={
            "model": "cut", "stream": True, "messages": [{"role": "user", "content": "q"}]})
        assert r.status_code == 200
        events = [e for e in r.text.split("\n\n") if e]
        assert "data: [DONE]" not in events
        last = json.loads(events[-1][6:])
        assert last["error"]["code"] == "server_error"
        assert "mid-answer" in last["error"]["message"]
        sdk = client(url, key="x")
        with pytest.raises(openai.APIError, match="mid-answer"):
            list(sdk.chat.completions.create(
                model="cut", stream=True, messages=[{"role": "user", "content": "q"}]))
        with pytest.raises(openai.BadRequestError) as bad:
            sdk.chat.completions.create(model="blocked",
                                        messages=[{"role": "user", "content": "q"}])
        assert bad.value.code == "guardrail_violation"


def _auth(who: str = "alice") -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[who]}"}


def test_error_statuses(base_url: str) -> None:
    c = client(base_url)
    msg = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.NotFoundError) as nf:
        c.chat.completions.create(model="nope", messages=msg)  # type: ignore[arg-type]
    assert nf.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        c.chat.completions.create(model="fast", messages=msg, temperature=5)  # type: ignore[arg-type]
    assert bad.value.param == "temperature"
    r = httpx.post(f"{base_url}/v1/chat/completions", headers=_auth(), content=b"{nope")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = httpx.post(f"{base_url}/v1/chat/completions", headers=_auth(), json={"model": "fast"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
    with pytest.raises(openai.AuthenticationError):
        client(base_url, key="wrong").chat.completions.create(model="fast", messages=msg)  # type: ignore[arg-type]
    r = httpx.get(f"{base_url}/v1/models")
    assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key"
    with pytest.raises(openai.PermissionDeniedError):
        client(base_url, "bob").chat.completions.create(model="safe", messages=msg)  # type: ignore[arg-type]
    with pytest.raises(openai.InternalServerError) as gone:
        c.chat.completions.create(model="broken", messages=msg)  # type: ignore[arg-type]
    assert gone.value.status_code == 502
    r = httpx.post(f"{base_url}/v1/chat/completions", headers=_auth(),
                   json={"model": "slowpoke", "messages": msg})
    assert r.status_code == 504
    assert httpx.get(f"{base_url}/nowhere").json()["error"]["code"] == "not_found"


def test_budget_and_rate_limit_per_key(base_url: str) -> None:
    msg = [{"role": "user", "content": "hi"}]
    carol = [httpx.post(f"{base_url}/v1/chat/completions", headers=_auth("carol"),
                        json={"model": "fast", "messages": msg, "max_tokens": 5})
             for _ in range(4)]
    # Each call spends 15 tokens (estimated at 6 beforehand) of 40: after three (45 spent)
    # nothing fits.
    assert [r.status_code for r in carol] == [200, 200, 200, 429]
    err = carol[3]
    assert err.json()["error"]["type"] == "insufficient_quota"
    assert err.headers["x-should-retry"] == "false"
    dave = [httpx.post(f"{base_url}/v1/chat/completions", headers=_auth("dave"),
                       json={"model": "safe", "messages": msg}) for _ in range(3)]
    assert [r.status_code for r in dave] == [200, 200, 429]
    assert int(dave[2].headers["retry-after"]) >= 1
    assert dave[2].json()["error"]["code"] == "rate_limit_exceeded"
    # alice is unaffected by the others' limits.
    ok = httpx.post(f"{base_url}/v1/chat/completions", headers=_auth(),
                    json={"model": "fast", "messages": msg})
    assert ok.status_code == 200


def test_metrics_health_openapi(base_url: str) -> None:
    client(base_url).chat.completions.create(model="fast",
                                             messages=[{"role": "user", "content": "hi"}])
    # With keys configured, /metrics needs one too.
    assert httpx.get(f"{base_url}/metrics").status_code == 401
    text = httpx.get(f"{base_url}/metrics", headers=_auth()).text
    assert 'chorus_gateway_requests_total{endpoint="chat",system="fast",model="fast",' \
           'status="200"} 1' in text
    assert 'chorus_gateway_tokens_total{system="fast",model="fast",type="output"} 5' in text
    assert 'chorus_gateway_request_seconds_count{system="fast",model="fast"} 1' in text
    assert httpx.get(f"{base_url}/health").json()["status"] == "ok"
    doc = httpx.get(f"{base_url}/openapi.json").json()
    assert "/v1/chat/completions" in doc["paths"]
    assert "fast" in doc["components"]["schemas"]["ChatRequest"]["properties"]["model"]["enum"]


@pytest.mark.parametrize("log_content", [False, True])
def test_logs_hold_no_keys_or_prompts(log_content: bool, gateway: Gateway,
                                      caplog: pytest.LogCaptureFixture) -> None:
    gateway.settings.log_content = log_content
    caplog.set_level(logging.DEBUG)
    with serving(create_app(gateway)) as url:
        client(url).chat.completions.create(
            model="fast", messages=[{"role": "user", "content": "my secret plan"}])
        httpx.post(f"{url}/v1/chat/completions", headers=_auth(), json={"model": "x"})
    logged = caplog.text
    assert KEYS["alice"] not in logged
    assert ("my secret plan" in logged) is log_content
    assert "chat" in logged
