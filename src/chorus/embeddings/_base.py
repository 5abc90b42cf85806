"""The Embedder contract: texts in, unit-length vectors out, batched, with a memo."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["Embedder", "Vectors", "cosine_matrix"]

Vectors = npt.NDArray[np.float32]


class Embedder(ABC):
    """Subclasses implement ``_embed`` for a batch of texts that missed the memo."""

    def __init__(self, name: str, *, memo_size: int = 10_000) -> None:
        self.name = name
        self._memo: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()
        self._memo_size = memo_size

    @abstractmethod
    async def _embed(self, texts: Sequence[str]) -> Vectors:
        """Embed ``texts`` (all distinct, none memoised): one row per text."""

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """One L2-normalised row per text, in order; repeated texts are embedded once.
        The memo keeps the ``memo_size`` texts used last; the answer is assembled from
        this call's own rows, so the memo may drop a text meanwhile (new rows pushing out
        old ones, or another call's) without losing it here."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        rows: dict[str, npt.NDArray[np.float32]] = {}
        for text in texts:
            row = self._memo.get(text)
            if row is not None:
                rows[text] = row
                self._memo.move_to_end(text)
        missing = [t for t in dict.fromkeys(texts) if t not in rows]
        if missing:
            raw = np.asarray(await self._embed(missing), dtype=np.float32)
            norms = np.linalg.norm(raw, axis=1, keepdims=True)
            fresh = (raw / np.where(norms == 0, 1, norms)).astype(np.float32)
            for text, row in zip(missing, fresh, strict=True):
                rows[text] = self._memo[text] = row
            self._trim()
        return np.stack([rows[t] for t in texts])

    def _trim(self) -> None:
        while len(self._memo) > self._memo_size:
            self._memo.popitem(last=False)

    def remember(self, texts: Sequence[str], vectors: npt.ArrayLike) -> None:
        """Put vectors computed before (by this embedder, e.g. read from a cache) in the
        memo, so ``embed`` returns them without running the model."""
        rows = np.asarray(vectors, dtype=np.float32)
        if rows.shape[0] != len(texts):
            raise ValueError(f"{len(texts)} texts but {rows.shape[0]} vectors")
        for text, row in zip(texts, rows, strict=True):
            self._memo[text] = row
            self._memo.move_to_end(text)
        self._trim()

    async def aclose(self) -> None:
        return None


def cosine_matrix(a: Vectors, b: Vectors) -> Vectors:
    """Cosine similarity of every row of ``a`` with every row of ``b`` (unit rows)."""
    return np.asarray(a @ b.T, dtype=np.float32)
