"""Embedders: local all-MiniLM-L6-v2 and any OpenAI-compatible /v1/embeddings."""

from chorus.embeddings._base import Embedder, Vectors, cosine_matrix

__all__ = ["Embedder", "Vectors", "cosine_matrix"]
