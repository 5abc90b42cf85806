"""The Embedder memo: a bounded cache of the texts used last, that never loses a row an
answer needs."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np

from chorus.embeddings._base import Embedder, Vectors


class Counting(Embedder):
    """Each text's vector is its length and a constant; counts the texts embedded."""

    def __init__(self, memo_size: int) -> None:
        super().__init__("counting", memo_size=memo_size)
        self.embedded: list[str] = []

    async def _embed(self, texts: Sequence[str]) -> Vectors:
        self.embedded += texts
        await asyncio.sleep(0)  # let another call run meanwhile
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)


def _unit(text: str) -> np.ndarray:
    v = np.array([len(text), 1.0])
    return v / np.linalg.norm(v)


async def test_a_memoised_text_pushed_out_by_the_same_call_is_still_answered() -> None:
    emb = Counting(memo_size=3)
    await emb.embed(["a", "bb", "ccc"])
    # "a" is a hit; the two new texts would push it and "bb" out of a memo of three.
    got = await emb.embed(["a", "dddd", "eeeee", "a"])
    assert np.allclose(got, [_unit(t) for t in ("a", "dddd", "eeeee", "a")])
    assert emb.embedded == ["a", "bb", "ccc", "dddd", "eeeee"]


async def test_the_memo_keeps_the_texts_used_last() -> None:
    emb = Counting(memo_size=2)
    await emb.embed(["a", "bb"])
    await emb.embed(["a"])  # a hit refreshes "a": "bb" is now the oldest
    await emb.embed(["ccc"])
    emb.embedded.clear()
    await emb.embed(["a", "ccc"])
    assert emb.embedded == []
    await emb.embed(["bb"])
    assert emb.embedded == ["bb"]


async def test_concurrent_calls_on_a_small_memo_each_get_their_rows() -> None:
    emb = Counting(memo_size=2)
    batches = [[f"{i}-{j}" * (j + 1) for j in range(4)] for i in range(5)]
    got = await asyncio.gather(*(emb.embed(b) for b in batches))
    for batch, rows in zip(batches, got, strict=True):
        assert np.allclose(rows, [_unit(t) for t in batch])
