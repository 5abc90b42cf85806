"""Test doubles shared by the agreement-pattern tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from chorus.embeddings import Embedder, Vectors


class TableEmbedder(Embedder):
    """Embeds each text to the vector the test gives for it (after strip)."""

    def __init__(self, table: Mapping[str, Sequence[float]]) -> None:
        super().__init__("table")
        self.table = {k: np.asarray(v, dtype=np.float32) for k, v in table.items()}
        self.batches: list[list[str]] = []

    async def _embed(self, texts: Sequence[str]) -> Vectors:
        self.batches.append(list(texts))
        return np.stack([self.table[t] for t in texts])
