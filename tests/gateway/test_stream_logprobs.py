"""``logprobs`` on a streamed answer: each chunk carries the log-probabilities of its own
tokens in ``choices[0].logprobs.content`` (as OpenAI's API does), from an
OpenAI-compatible upstream (passed through, also through a pattern) and from the local
llama.cpp model; driven by the official openai SDK against the gateway on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
import pytest
from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import StreamingResponse
from starlette.routing import Route

from chorus.config.builder import Config
from chorus.core.types import Completion, Params, TokenLogprob
from chorus.gateway import Gateway, create_app
from chorus.patterns.fallback import Fallback
from chorus.providers.function import FunctionModel
from chorus.providers.openai import OpenAIModel
from chorus.providers.scripted import ScriptedModel
from tests.conftest import LlamaServer
from tests.gateway.conftest import serving

ASK = [{"role": "user", "content": "Capital of France?"}]
#: What the upstream streams: each chunk's text and its tokens' (token, logprob, top).
PIECES = [("The", [("The", -0.1, [("The", -0.1), ("A", -2.4)])]),
          (" capital is", [(" capital", -0.3, [(" capital", -0.3), (" city", -1.5)]),
                           (" is", -0.05, [(" is", -0.05), (" was", -3.1)])]),
          (" Paris.", [(" Paris", -0.02, [(" Paris", -0.02), (" Lyon", -4.0)]),
                       (".", -0.2, [(".", -0.2), ("!", -1.9)])])]


def _lp(token: str, logprob: float, top: list[tuple[str, float]]) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode()),
            "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())}
                             for t, lp in top]}


def _upstream(seen: list[dict[str, Any]]) -> Starlette:
    async def chat(request: HttpRequest) -> StreamingResponse:
        body = await request.json()
        seen.append(body)
        asked = bool(body.get("logprobs"))

        async def events() -> AsyncIterator[bytes]:
            for text, tokens in PIECES:
                choice = {"index": 0, "delta": {"content": text}, "finish_reason": None,
                          "logprobs": {"content": [_lp(*t) for t in tokens]} if asked
                          else None}
                yield b"data: " + json.dumps({"id": "up", "object": "chat.completion.chunk",
                                              "created": 0, "model": "m",
                                              "choices": [choice]}).encode() + b"\n\n"
            yield b'data: {"id": "up", "object": "chat.completion.chunk", "created": 0, ' \
                b'"model": "m", "choices": [{"index": 0, "delta": {}, ' \
                b'"finish_reason": "stop"}]}\n\ndata: [DONE]\n\n'
        return StreamingResponse(events(), media_type="text/event-stream")
    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


@pytest.fixture
def seen() -> list[dict[str, Any]]:
    return []


@pytest.fixture
def url(seen: list[dict[str, Any]]) -> Iterator[str]:
    with serving(_upstream(seen)) as up:
        hosted = OpenAIModel("hosted", model_id="m", base_url=up + "/v1", api_key_env=None)
        down = ScriptedModel("down", fail_with="connection", fail_times=-1)
        gw = Gateway({"hosted": hosted,
                      "safe": Fallback("safe", [down, hosted], cooldown_s=0)})
        with serving(create_app(gw)) as base:
            yield base


def _content_chunks(stream: Any) -> list[Any]:
    return [c for c in stream if c.choices and c.choices[0].delta.content]


@pytest.mark.parametrize("system", ["hosted", "safe"])
def test_each_chunk_carries_its_own_tokens_logprobs(url: str, system: str,
                                                    seen: list[dict[str, Any]]) -> None:
    with openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as sdk:
        chunks = _content_chunks(sdk.chat.completions.create(
            model=system, messages=ASK, stream=True, logprobs=True, top_logprobs=2))
    assert seen[-1]["logprobs"] is True and seen[-1]["top_logprobs"] == 2
    assert [c.choices[0].delta.content for c in chunks] == [t for t, _ in PIECES]
    for chunk, (_, tokens) in zip(chunks, PIECES, strict=True):
        lp = chunk.choices[0].logprobs
        assert lp is not None and lp.content is not None
        assert [(t.token, t.logprob) for t in lp.content] == [(t, p) for t, p, _ in tokens]
        assert [[(a.token, a.logprob) for a in t.top_logprobs] for t in lp.content] == [
            top for _, _, top in tokens]


def test_no_logprobs_unless_asked(url: str) -> None:
    with openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as sdk:
        chunks = list(sdk.chat.completions.create(model="hosted", messages=ASK, stream=True))
    assert all(c.choices[0].logprobs is None for c in chunks if c.choices)


def test_a_model_that_answers_whole_sends_its_logprobs_with_its_text_once() -> None:
    tokens = (TokenLogprob("Par", -0.1, (("Par", -0.1),)), TokenLogprob("is", -0.2))
    whole = FunctionModel("whole", lambda r: Completion("Paris", "whole", logprobs=tokens),
                          thread=False)
    with serving(create_app(Gateway({"whole": whole}))) as base, \
            openai.OpenAI(base_url=f"{base}/v1", api_key="x", max_retries=0) as sdk:
        chunks = [c for c in sdk.chat.completions.create(
            model="whole", messages=ASK, stream=True, logprobs=True) if c.choices]
    with_lp = [c for c in chunks if c.choices[0].logprobs is not None]
    assert len(with_lp) == 1 and with_lp[0].choices[0].delta.content == "Paris"
    assert [(t.token, t.logprob) for t in with_lp[0].choices[0].logprobs.content or ()] == [
        ("Par", -0.1), ("is", -0.2)]


LOCAL = """\
models:
  smollm2:
    provider: local
    model: smollm2-135m
    params: {temperature: 0, max_tokens: 12, seed: 0}
"""


@pytest.mark.local
def test_the_local_model_streams_logprobs_per_chunk() -> None:
    gw = Gateway.from_config(Config.from_text(LOCAL))
    with serving(create_app(gw)) as url, \
            openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as sdk:
        ask = [{"role": "user", "content": "Name three colours."}]
        whole = sdk.chat.completions.create(model="smollm2", messages=ask, logprobs=True,
                                            top_logprobs=2)
        chunks = _content_chunks(sdk.chat.completions.create(
            model="smollm2", messages=ask, stream=True, logprobs=True, top_logprobs=2))
    assert len(chunks) > 1
    per_chunk = [c.choices[0].logprobs for c in chunks]
    assert all(lp is not None and lp.content for lp in per_chunk)
    streamed = [t for lp in per_chunk for t in lp.content]  # type: ignore[union-attr]
    assert all(len(t.top_logprobs) == 2 for t in streamed)
    # Each chunk's tokens spell its text (llama.cpp decodes token by token here).
    for chunk, lp in zip(chunks, per_chunk, strict=True):
        assert "".join(t.token for t in lp.content) == chunk.choices[0].delta.content  # type: ignore[union-attr]
    # Temperature 0, seed 0: the same tokens as the answer not streamed.
    assert whole.choices[0].logprobs is not None
    assert [(t.token, round(t.logprob, 4)) for t in streamed] == [
        (t.token, round(t.logprob, 4)) for t in whole.choices[0].logprobs.content or ()]


@pytest.mark.local
@pytest.mark.server
def test_llama_cpp_servers_logprobs_pass_through_per_chunk(llama_server: LlamaServer) -> None:
    up = OpenAIModel("llama_server", model_id=llama_server.model,
                     base_url=llama_server.base_url, api_key_env=None,
                     params=Params(temperature=0, max_tokens=8))
    with serving(create_app(Gateway({"llama_server": up}))) as url, \
            openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0,
                          timeout=120) as sdk:
        chunks = _content_chunks(sdk.chat.completions.create(
            model="llama_server", messages=[{"role": "user", "content": "Say hello."}],
            stream=True, logprobs=True, top_logprobs=1))
    assert chunks
    for chunk in chunks:
        lp = chunk.choices[0].logprobs
        assert lp is not None and lp.content
        assert "".join(t.token for t in lp.content) == chunk.choices[0].delta.content


def test_legacy_completions_stream_logprobs_per_chunk(url: str) -> None:
    with openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as sdk:
        chunks = [c for c in sdk.completions.create(
            model="hosted", prompt="Capital of France?", stream=True, logprobs=2)
            if c.choices and c.choices[0].text]
    assert [c.choices[0].text for c in chunks] == [t for t, _ in PIECES]
    at = 0
    for chunk, (text, tokens) in zip(chunks, PIECES, strict=True):
        lp = chunk.choices[0].logprobs
        assert lp is not None and lp.tokens == [t for t, _, _ in tokens]
        assert lp.token_logprobs == [p for _, p, _ in tokens]
        assert lp.top_logprobs == [dict(top) for _, _, top in tokens]
        offsets = [at + len("".join(t for t, _, _ in tokens[:i])) for i in range(len(tokens))]
        assert lp.text_offset == offsets
        at += len(text)


def test_responses_stream_logprobs_per_delta(url: str) -> None:
    with openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as sdk:
        events = list(sdk.responses.create(model="hosted", input="Capital of France?",
                                           stream=True, top_logprobs=2))
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert [e.delta for e in deltas] == [t for t, _ in PIECES]
    for ev, (_, tokens) in zip(deltas, PIECES, strict=True):
        assert [(t.token, t.logprob) for t in ev.logprobs] == [(t, p) for t, p, _ in tokens]
        assert [[(a.token, a.logprob) for a in t.top_logprobs or ()] for t in ev.logprobs] \
            == [top for _, _, top in tokens]
    (done,) = [e for e in events if e.type == "response.output_text.done"]
    assert [t.token for t in done.logprobs] == [t for _, ts in PIECES for t, _, _ in ts]
