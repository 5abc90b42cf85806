"""The numpy MiniLM runs a query's encode on one BLAS thread and a bulk call on all."""

from __future__ import annotations

from typing import Any

import pytest

from chorus.embeddings import _bert
from chorus.embeddings.local import MiniLMEmbedder, model_folder

pytestmark = pytest.mark.embeddings


def test_a_query_runs_on_one_blas_thread_and_a_bulk_call_on_all(
        monkeypatch: pytest.MonkeyPatch) -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")
    encoder = _bert.BertEncoder(model_folder())
    seen: list[int] = []
    forward = encoder._forward

    def spy(batch: list[list[int]]) -> Any:
        blas = threadpoolctl.threadpool_info()
        seen.append(min(p["num_threads"] for p in blas if p["user_api"] == "blas"))
        return forward(batch)

    monkeypatch.setattr(encoder, "_forward", spy)
    with threadpoolctl.threadpool_limits(2, "blas"):
        query = encoder.encode(["set an alarm for seven"])
        assert seen == [1]
        long = "the quick brown fox jumps over the lazy dog " * 40  # > 256 word pieces
        encoder.encode([long])
        assert seen[1:] and all(n == 2 for n in seen[1:])
        # Same vector either way.
        monkeypatch.setattr(_bert, "ONE_THREAD_TOKENS", 0)
        again = encoder.encode(["set an alarm for seven"])
    assert float((query * again).sum()) > 0.99999


async def test_a_short_query_is_encoded_in_the_callers_thread(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from chorus.embeddings import local

    embedder = MiniLMEmbedder(backend="numpy")
    embedder.load()
    encoder, lock = local._load(model_folder(), "numpy")
    threads: list[str] = []
    encode = encoder.encode

    def spy(texts: list[str], batch_size: int = 32) -> Any:
        threads.append(threading.current_thread().name)
        return encode(texts, batch_size=batch_size)

    monkeypatch.setattr(encoder, "encode", spy)
    here = threading.current_thread().name
    short = await embedder.embed(["set an alarm for seven"])
    assert threads == [here]
    # Past INLINE_TOKENS word pieces, or while another encode holds the model: a worker.
    long = "please set an alarm for seven in the morning on every weekday " * 3
    assert len(encoder.tokenizer.encode(long).ids) > local.INLINE_TOKENS
    await embedder.embed([long])
    assert threads[1] == "chorus-minilm"
    embedder._memo.clear()
    with lock:
        assert embedder._encode_inline(["set an alarm for seven"]) is None
    # The same vector either way.
    monkeypatch.setattr(local, "INLINE_TOKENS", 0)
    again = await embedder.embed(["set an alarm for seven"])
    assert threads[2] == "chorus-minilm"
    assert float((short * again).sum()) > 0.99999
