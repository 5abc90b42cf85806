"""The gateway over the bundled SmolLM2 and a pattern built on it (slow: real inference)."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from chorus.config.builder import Config
from chorus.gateway import Gateway, create_app
from tests.gateway.conftest import serving

CONFIG = """\
models:
  smollm2:
    provider: local
    model: smollm2-135m
    params: {temperature: 0, max_tokens: 8, seed: 0}
  down: {provider: scripted, fail_with: connection, fail_times: -1}
systems:
  safe: {kind: fallback, models: [down, smollm2], cooldown_s: 0}
"""


@pytest.mark.local
def test_local_model_and_pattern_through_the_sdk() -> None:
    gw = Gateway.from_config(Config.from_text(CONFIG))
    with serving(create_app(gw)) as url, \
            openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as sdk:
        msg = [{"role": "user", "content": "Say hello."}]
        plain = sdk.chat.completions.with_raw_response.create(model="smollm2", messages=msg,
                                                              max_tokens=6)
        done = plain.parse()
        assert done.choices[0].message.content
        assert done.usage is not None and 0 < done.usage.completion_tokens <= 6
        assert plain.headers["x-chorus-model"] == "smollm2"
        pieces = [c.choices[0].delta.content or "" for c in sdk.chat.completions.create(
            model="safe", messages=msg, max_tokens=6, stream=True) if c.choices]
        assert "".join(pieces).strip()


@pytest.mark.local
def test_legacy_completions_on_the_local_model_streamed_and_not() -> None:
    gw = Gateway.from_config(Config.from_text(CONFIG))
    with serving(create_app(gw)) as url, \
            openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as sdk:
        r = sdk.completions.create(model="safe", prompt="Say hello.", max_tokens=6,
                                   logprobs=2)
        (choice,) = r.choices
        lp = choice.logprobs
        assert choice.text and lp is not None and lp.tokens and lp.top_logprobs
        assert "".join(lp.tokens or []) == choice.text
        assert all(len(alts) == 2 for alts in lp.top_logprobs)
        assert r.usage is not None and r.usage.completion_tokens == len(lp.tokens or [])
        pieces = [c.choices[0].text for c in sdk.completions.create(
            model="smollm2", prompt="Say hello.", max_tokens=6, stream=True) if c.choices]
        assert "".join(pieces) == choice.text  # temperature 0, seed 0: the same answer


@pytest.mark.local
def test_a_dropped_stream_frees_the_local_model() -> None:
    """A chat UI's stop button on a long local answer: the client closes the stream after
    its first piece, and the model, which generates one request at a time, is free for
    the next one at once, not after the rest of an answer nobody will read."""
    gw = Gateway.from_config(Config.from_text(CONFIG))
    count = [{"role": "user", "content": "Count from 1 to 500, separated by commas."}]
    with serving(create_app(gw)) as url, httpx.Client(base_url=url, timeout=60) as http:
        ask = {"model": "smollm2", "messages": count, "temperature": 0, "max_tokens": 400}
        started = time.perf_counter()
        whole = http.post("/v1/chat/completions", json=ask).json()
        undisturbed = time.perf_counter() - started  # what the dropped stream would take
        assert whole["usage"]["completion_tokens"] > 50
        with http.stream("POST", "/v1/chat/completions",
                         json={**ask, "stream": True}) as r:
            assert r.status_code == 200
            next(r.iter_lines())
        dropped = time.perf_counter()
        quick = http.post("/v1/chat/completions", json={
            "model": "smollm2", "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 2})
        waited = time.perf_counter() - dropped
        assert quick.status_code == 200 and quick.json()["choices"][0]["message"]["content"]
        metrics = http.get("/metrics").text
    assert waited < 0.3 * undisturbed, (waited, undisturbed)
    assert 'chorus_gateway_errors_total{system="smollm2",code="client_disconnected"} 1' in metrics
