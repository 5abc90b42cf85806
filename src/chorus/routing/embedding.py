"""Route by meaning: example utterances per label, compared with the request by cosine
similarity, either to each label's centroid or to its k nearest examples.

Below ``threshold`` the classifier abstains and the Router takes its default route.
The examples are embedded once, on the first call (the Embedder memoises too).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from chorus.core.types import Request
from chorus.embeddings import Embedder, Vectors
from chorus.routing._base import Classifier, Decision

__all__ = [
    "EmbeddingClassifier",
    "Method",
    "centroid_scores",
    "centroids",
    "decide",
    "knn_scores",
]

Method = Literal["centroid", "knn"]


def centroids(vectors: Vectors, owners: Sequence[int], n_labels: int) -> Vectors:
    """The unit-length mean of each label's example rows (``owners[i]`` is row i's label)."""
    sums = np.zeros((n_labels, vectors.shape[1]), dtype=np.float32)
    np.add.at(sums, np.asarray(owners), vectors)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return np.asarray(sums / np.where(norms == 0, 1, norms), dtype=np.float32)


def centroid_scores(query: Vectors, cents: Vectors, labels: Sequence[str]) -> dict[str, float]:
    """Cosine similarity of a unit ``query`` row with each label's centroid."""
    sims = cents @ query
    return {label: float(s) for label, s in zip(labels, sims, strict=True)}


def knn_scores(
    sims: Vectors, owners: Sequence[str], k: int
) -> tuple[dict[str, float], dict[str, int]]:
    """Among the ``k`` examples most similar to the query: per label, the mean similarity
    of its examples there, and how many there are (its votes)."""
    k = max(1, min(k, len(owners)))
    top = np.argsort(-sims, kind="stable")[:k]
    total: dict[str, float] = {}
    votes: dict[str, int] = {}
    for i in top:
        label = owners[int(i)]
        total[label] = total.get(label, 0.0) + float(sims[int(i)])
        votes[label] = votes.get(label, 0) + 1
    return {label: total[label] / votes[label] for label in total}, votes


def decide(
    scores: Mapping[str, float],
    threshold: float | None,
    votes: Mapping[str, int] | None = None,
) -> Decision:
    """The best label (most votes first when voting, then highest similarity), or an
    abstention when its similarity is below ``threshold``."""
    if not scores:
        return Decision(None, "no examples to compare with")
    if votes:
        best = max(scores, key=lambda lb: (votes.get(lb, 0), scores[lb]))
        how = f"{best} {votes[best]}/{sum(votes.values())} nearest, similarity"
    else:
        best = max(scores, key=lambda lb: scores[lb])
        how = f"{best} similarity"
    sim = scores[best]
    if threshold is not None and sim < threshold:
        return Decision(None, f"{how} {sim:.2f} < threshold {threshold:g}", sim, scores)
    return Decision(best, f"{how} {sim:.2f}", sim, scores)


class EmbeddingClassifier(Classifier):
    """Nearest centroid or k nearest neighbours over example utterances per label."""

    type = "embedding"
    labels: tuple[str, ...]

    def __init__(
        self,
        embedder: Embedder,
        examples: Mapping[str, Sequence[str]],
        *,
        method: Method = "centroid",
        k: int = 5,
        threshold: float | None = None,
    ) -> None:
        if not examples:
            raise ValueError("an embedding classifier needs examples for at least one label")
        empty = [label for label, texts in examples.items() if not texts]
        if empty:
            raise ValueError(f"label {empty[0]!r} has no examples")
        if method not in ("centroid", "knn"):
            raise ValueError(f"method must be 'centroid' or 'knn', got {method!r}")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self.embedder = embedder
        self.examples = {label: list(texts) for label, texts in examples.items()}
        self.labels = tuple(self.examples)
        self.method: Method = method
        self.k = k
        self.threshold = threshold
        self._texts = [t for texts in self.examples.values() for t in texts]
        self._owners = [label for label, texts in self.examples.items() for _ in texts]
        self._index: Vectors | None = None

    async def _rows(self) -> Vectors:
        # Built on first use; two concurrent first calls both embed, which is harmless.
        if self._index is None:
            vectors = await self.embedder.embed(self._texts)
            if self.method == "centroid":
                where = {label: i for i, label in enumerate(self.labels)}
                owners = [where[label] for label in self._owners]
                vectors = centroids(vectors, owners, len(self.labels))
            self._index = vectors
        return self._index

    async def classify(self, request: Request) -> Decision:
        rows = await self._rows()
        query = (await self.embedder.embed([request.prompt]))[0]
        if self.method == "centroid":
            return decide(centroid_scores(query, rows, self.labels), self.threshold)
        scores, votes = knn_scores(np.asarray(rows @ query, dtype=np.float32), self._owners,
                                   self.k)
        return decide(scores, self.threshold, votes)
