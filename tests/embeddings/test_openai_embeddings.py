"""OpenAIEmbedder: batching and parsing through MockTransport, then a real server."""

from __future__ import annotations

import json
from typing import Any

import httpx
import numpy as np
import pytest

from chorus.config.builder import Config
from chorus.core.errors import AuthenticationError, MalformedResponse
from chorus.embeddings import cosine_matrix
from chorus.embeddings.openai import OpenAIEmbedder


def fake_vector(text: str) -> list[float]:
    """A deterministic 4-d vector per text, not unit length (the embedder normalises)."""
    return [float(len(text)), float(text.count("a")), 1.0, float(ord(text[0]) % 7)]


class FakeEndpoint:
    """Answers /embeddings like OpenAI, rows in reverse order (``index`` says where)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[httpx.Headers] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        self.headers.append(request.headers)
        data = [{"object": "embedding", "index": i, "embedding": fake_vector(t)}
                for i, t in enumerate(body["input"])]
        return httpx.Response(200, json={"object": "list", "data": data[::-1],
                                         "model": body["model"],
                                         "usage": {"prompt_tokens": 3, "total_tokens": 3}})


async def test_batches_order_normalisation_and_memo() -> None:
    fake = FakeEndpoint()
    emb = OpenAIEmbedder("oai", api_key="sk-test", batch_size=2, dimensions=4,
                         transport=httpx.MockTransport(fake))
    texts = ["alpha", "beta", "gamma", "delta", "banana"]
    rows = await emb.embed(texts)
    assert [b["input"] for b in fake.bodies] == [["alpha", "beta"], ["gamma", "delta"],
                                                  ["banana"]]
    assert all(b["model"] == "text-embedding-3-small" and b["dimensions"] == 4
               for b in fake.bodies)
    assert fake.headers[0]["authorization"] == "Bearer sk-test"
    assert rows.shape == (5, 4)
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0)
    for text, row in zip(texts, rows, strict=True):
        want = np.asarray(fake_vector(text))
        assert np.allclose(row, want / np.linalg.norm(want), atol=1e-6)
    again = await emb.embed(["banana", "alpha", "new"])
    assert fake.bodies[-1]["input"] == ["new"]  # the others came from the memo
    assert np.allclose(again[0], rows[4])
    await emb.aclose()


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"data": []}, "expected 1 embeddings, got 0"),
        ({"data": [{"index": 0, "embedding": [[0.1, "x"], [0.3, 0.4]]}]}, "not a matrix"),
        ({"data": [{"index": 0, "embedding": "0.1 0.2"}]}, "no usable"),
        ({"oops": True}, "no `data` list"),
    ],
)
async def test_answers_without_usable_vectors_are_malformed(body: dict[str, Any],
                                                            fragment: str) -> None:
    emb = OpenAIEmbedder("oai", api_key="k",
                         transport=httpx.MockTransport(lambda r: httpx.Response(200, json=body)))
    with pytest.raises(MalformedResponse, match=fragment):
        await emb.embed(["one"])
    await emb.aclose()


async def test_errors_and_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    emb = OpenAIEmbedder("oai", transport=httpx.MockTransport(FakeEndpoint()))
    with pytest.raises(AuthenticationError, match="OPENAI_API_KEY"):
        await emb.embed(["x"])
    monkeypatch.setenv("OPENAI_API_KEY", "sk-bad")
    reject = httpx.MockTransport(lambda r: httpx.Response(
        401, json={"error": {"message": "Incorrect API key", "code": "invalid_api_key"}}))
    emb = OpenAIEmbedder("oai", transport=reject)
    with pytest.raises(AuthenticationError, match="Incorrect API key"):
        await emb.embed(["x"])
    await emb.aclose()


async def test_per_token_vectors_are_mean_pooled() -> None:
    body = {"data": [{"index": 0, "embedding": [[1.0, 0.0, 2.0], [3.0, 0.0, 2.0]]}]}
    emb = OpenAIEmbedder("oai", api_key="k",
                         transport=httpx.MockTransport(lambda r: httpx.Response(200, json=body)))
    (row,) = await emb.embed(["one"])
    await emb.aclose()
    assert np.allclose(row, np.array([2.0, 0.0, 2.0]) / np.sqrt(8))


def test_yaml_embedder_kind() -> None:
    config = Config.from_text(
        "embedders:\n"
        "  remote:\n"
        "    kind: openai\n"
        "    model: text-embedding-3-large\n"
        "    base_url: http://127.0.0.1:9/v1\n"
        "    batch_size: 16\n"
        "models:\n"
        "  m: {provider: scripted, default: ok}\n"
    )
    emb = config.builder.embedder("remote")
    assert isinstance(emb, OpenAIEmbedder)
    assert (emb.model_id, emb.base_url, emb.batch_size) == (
        "text-embedding-3-large", "http://127.0.0.1:9/v1", 16)


@pytest.mark.server
async def test_real_server_embeddings_are_similar_for_similar_texts(
    llama_embedding_server: Any,
) -> None:
    # One text a request: llama-cpp-python 0.3.36's server misreads the per-token vectors
    # of every text after the first in a batch (it offsets by tokens, not floats).
    emb = OpenAIEmbedder("smol", model_id=llama_embedding_server.model,
                         base_url=llama_embedding_server.base_url, batch_size=1, timeout=60)
    rows = await emb.embed(["The cat sat on the mat.", "A cat is sitting on a mat.",
                            "Quarterly revenue rose by four percent."])
    await emb.aclose()
    assert rows.shape[0] == 3 and rows.shape[1] > 100
    sims = cosine_matrix(rows, rows)
    assert sims[0, 1] > sims[0, 2] and sims[1, 0] > sims[1, 2]
