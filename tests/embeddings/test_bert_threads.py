"""The numpy MiniLM runs a query's encode on one BLAS thread and a bulk call on all."""

from __future__ import annotations

from typing import Any

import pytest

from chorus.embeddings import _bert
from chorus.embeddings.local import model_folder

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
