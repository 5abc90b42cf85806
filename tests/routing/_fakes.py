"""A tiny deterministic embedder for routing tests: bag of known words."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from chorus.embeddings import Embedder, Vectors


class WordEmbedder(Embedder):
    """One dimension per vocabulary word (counts); other words are ignored, so a text
    with none of them embeds to zeros. Records every batch it was asked to embed."""

    def __init__(self, vocab: Sequence[str]) -> None:
        super().__init__("words")
        self.index = {w: i for i, w in enumerate(vocab)}
        self.batches: list[list[str]] = []

    async def _embed(self, texts: Sequence[str]) -> Vectors:
        self.batches.append(list(texts))
        rows = np.zeros((len(texts), len(self.index)), dtype=np.float32)
        for r, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                if word in self.index:
                    rows[r, self.index[word]] += 1
        return rows
