"""The gateway over the bundled SmolLM2 and a pattern built on it (slow: real inference)."""

from __future__ import annotations

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
