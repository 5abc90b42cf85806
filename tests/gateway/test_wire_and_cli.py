"""Wire mapping (no I/O), embeddings, and the `chorus serve` command."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import openai
import pytest
from pydantic import ValidationError

from chorus.cli.main import main
from chorus.core import errors as E
from chorus.core.types import Span
from chorus.embeddings import Embedder, Vectors
from chorus.gateway import Gateway, create_app
from chorus.gateway.openai_wire import (
    ChatRequest,
    decision_summary,
    error_response,
    to_request,
    validation_error,
)
from chorus.providers.scripted import ScriptedModel
from tests.conftest import free_port
from tests.gateway.conftest import serving


def test_to_request_keeps_unset_params_unset() -> None:
    body = ChatRequest.model_validate({"model": "m", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text",
                                                                      "text": "b"}]}],
        "max_tokens": 9, "stop": "END"})
    req = to_request(body, {"key": "k"})
    assert req.prompt == "ab"
    assert req.params.given() == {"max_tokens": 9, "stop": ("END",)}


def test_validation_error_names_the_field() -> None:
    with pytest.raises(ValidationError) as exc:
        ChatRequest.model_validate({"model": "m", "messages": [{"role": "robot"}]})
    err = validation_error(exc.value)
    assert err.status == 400 and err.param == "messages.0.role"


@pytest.mark.parametrize(("error", "status", "code"), [
    (E.BudgetExceeded("spent"), 429, "budget_exceeded"),
    (E.RateLimitError("slow", retry_after=2.2), 429, "rate_limit_exceeded"),
    (E.ServerError("5xx"), 502, "server_error"),
    (E.AuthenticationError("upstream key"), 502, "authentication_error"),
    (E.ProviderTimeout("slow"), 504, "timeout"),
    (E.DeadlineExceeded("late"), 504, "timeout"),
    (E.ContextLengthError("long"), 400, "context_length_exceeded"),
    (E.GuardrailViolation("pii", "email"), 400, "guardrail_violation"),
    (E.AllModelsFailed("fb", {"a": E.ProviderTimeout("t"), "b": E.ProviderTimeout("t")}),
     504, "timeout"),
    (E.AllModelsFailed("fb", {"a": E.ServerError("x"), "b": E.ProviderTimeout("t")}),
     502, "all_models_failed"),
    (E.StepFailed("pipe", "draft", E.RateLimitError("x")), 429, "rate_limit_exceeded"),
    (E.StoreUnavailable("redis down"), 503, "store_unavailable"),
])
def test_error_mapping(error: E.ChorusError, status: int, code: str) -> None:
    wire = error_response(error)
    assert (wire.status, wire.code) == (status, code)
    assert set(wire.body()["error"]) == {"message", "type", "param", "code"}
    if isinstance(error, E.RateLimitError):
        assert wire.headers["retry-after"] == "3"


def test_decision_summary_is_short_ascii() -> None:
    span = Span("router", "r", attributes={"route": "math", "scores": {"math": 0.91234},
                                            "note": "é" * 500})
    text = decision_summary(span)
    assert text.startswith("router r: route=math scores={math:0.9123}")
    assert len(text) <= 240 and text.isascii()


class Letters(Embedder):
    """A deterministic embedder: letter counts."""

    async def _embed(self, texts: Sequence[str]) -> Vectors:
        return np.array([[t.count(c) for c in "abcde"] for t in texts], dtype=np.float32)


def test_embeddings_float_and_base64() -> None:
    gw = Gateway({"m": ScriptedModel("m", default="x")}, embedders={"letters": Letters("l")})
    with serving(create_app(gw)) as url, \
            openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as sdk:
        # The SDK asks for base64 by default and decodes it.
        got = sdk.embeddings.create(model="letters", input=["aab", "e"])
        assert len(got.data) == 2
        assert got.data[0].embedding == pytest.approx([2 / 5**0.5, 1 / 5**0.5, 0, 0, 0])
        plain = sdk.embeddings.create(model="letters", input="e", encoding_format="float")
        assert plain.data[0].embedding == pytest.approx([0, 0, 0, 0, 1])
        with pytest.raises(openai.NotFoundError):
            sdk.embeddings.create(model="nope", input="e")


def test_hash_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--hash-key", "sk-1"]) == 0
    assert capsys.readouterr().out.strip() == hashlib.sha256(b"sk-1").hexdigest()


def test_bad_config_fails_before_binding(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  m: {provider: scripted, default: x}\n"
                   "gateway:\n  keys:\n    - {name: a, key_sha256: nothex}\n")
    assert main(["serve", "-c", str(bad), "--port", "1"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "key_sha256" in err


def test_chorus_serve_subprocess(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("models:\n  m: {provider: scripted, default: pong}\n")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "chorus.cli.main", "serve", "-c", str(cfg),
                             "--port", str(port)], stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        first, second = proc.stderr.readline(), proc.stderr.readline()
        assert f"127.0.0.1:{port}" in first and "no gateway.keys" in second
        import httpx

        for _ in range(100):
            try:
                r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json={
                    "model": "m", "messages": [{"role": "user", "content": "ping"}]})
                break
            except httpx.TransportError:
                import time

                time.sleep(0.1)
        assert r.json()["choices"][0]["message"]["content"] == "pong"
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()


def test_busy_port_fails_before_announcing(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    cfg = tmp_path / "c.yaml"
    cfg.write_text("models:\n  m: {provider: scripted, default: pong}\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "-c", str(cfg), "--port", str(port)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"chorus: error: 127.0.0.1:{port} is in use: choose another --port or "
                   "stop what listens there")
