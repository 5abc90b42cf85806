"""OpenAIEmbedder: any OpenAI-compatible ``POST {base_url}/embeddings`` endpoint, in batches.

Per-token vectors (what llama-cpp-python's server returns for a chat GGUF) are mean-pooled.

    OpenAIEmbedder("oai", model_id="text-embedding-3-small")      # key from OPENAI_API_KEY
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import httpx
import numpy as np
from pydantic import Field

from chorus.config.schema import Node
from chorus.core.errors import MalformedResponse
from chorus.core.registry import BuildContext
from chorus.embeddings._base import Embedder, Vectors
from chorus.http import Endpoint, HttpClient, Transport, resolve_api_key

__all__ = ["OpenAIEmbedder", "OpenAIEmbedderConfig", "parse_embeddings"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"


def parse_embeddings(data: Any, count: int, *, name: str) -> Vectors:
    """The rows of an embeddings answer, in input order (by ``index`` when given)."""
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list) or len(items) != count:
        got = len(items) if isinstance(items, list) else "no `data` list"
        raise MalformedResponse(f"expected {count} embeddings, got {got}; is `base_url` an "
                                "OpenAI-compatible /v1 endpoint?", model=name)
    rows: list[Any] = [None] * count
    for position, item in enumerate(items):
        index = item.get("index", position) if isinstance(item, dict) else None
        vector = item.get("embedding") if isinstance(item, dict) else None
        if not isinstance(index, int) or not 0 <= index < count or not isinstance(vector, list):
            raise MalformedResponse(f"embedding {position} has no usable `embedding`/`index`",
                                    model=name)
        if vector and isinstance(vector[0], list):
            # llama-cpp-python's server answers one vector per token for a model without
            # a pooling type (any chat GGUF): mean-pool them into one.
            vector = _mean(vector, name=name)
        rows[index] = vector
    if any(r is None for r in rows) or len({len(r) for r in rows}) > 1:
        raise MalformedResponse("the embeddings are missing rows or differ in length",
                                model=name)
    return np.asarray(rows, dtype=np.float32).reshape(count, -1)


def _mean(token_vectors: list[Any], *, name: str) -> list[float]:
    try:
        pooled = np.asarray(token_vectors, dtype=np.float32).mean(axis=0)
    except (TypeError, ValueError):
        raise MalformedResponse("per-token embeddings that are not a matrix of numbers",
                                model=name) from None
    if pooled.ndim != 1:
        raise MalformedResponse("embeddings nested deeper than one vector per token",
                                model=name)
    return [float(x) for x in pooled]


class OpenAIEmbedder(Embedder):
    """Embeds texts with an OpenAI-compatible endpoint, ``batch_size`` texts a request."""

    def __init__(
        self,
        name: str,
        *,
        model_id: str = "text-embedding-3-small",
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        api_key_env: str | None = "OPENAI_API_KEY",
        headers: Mapping[str, str] | None = None,
        timeout: float = 60.0,
        batch_size: int = 64,
        dimensions: int | None = None,
        transport: Transport | httpx.AsyncBaseTransport | None = None,
        memo_size: int = 10_000,
    ) -> None:
        super().__init__(name, memo_size=memo_size)
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.model_id, self.base_url = model_id, base_url.rstrip("/")
        self.api_key, self.api_key_env = api_key, api_key_env
        self.headers = dict(headers or {})
        self.batch_size, self.dimensions = batch_size, dimensions
        self._http = HttpClient(timeout=timeout, transport=transport)
        hint = f"check the key in {api_key_env}" if api_key_env and not api_key else \
            "check `api_key:`"
        self._endpoint = Endpoint(self._http, model=name, model_id=model_id, auth_hint=hint)

    async def _embed(self, texts: Sequence[str]) -> Vectors:
        key = resolve_api_key(self.api_key, self.api_key_env, self.base_url, model=self.name)
        headers = {**({"Authorization": f"Bearer {key}"} if key else {}), **self.headers}
        url = f"{self.base_url}/embeddings"
        batches = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start:start + self.batch_size])
            payload: dict[str, Any] = {"model": self.model_id, "input": batch}
            if self.dimensions is not None:
                payload["dimensions"] = self.dimensions
            data = await self._endpoint.request_json("POST", url, headers=headers,
                                                     payload=payload)
            batches.append(parse_embeddings(data, len(batch), name=self.name))
        if len({b.shape[1] for b in batches}) > 1:
            raise MalformedResponse("batches came back with different dimensions",
                                    model=self.name)
        return np.concatenate(batches) if batches else np.zeros((0, 0), dtype=np.float32)

    async def aclose(self) -> None:
        await self._http.aclose()


class OpenAIEmbedderConfig(Node):
    kind: Literal["openai"] = "openai"
    description: str = ""
    model: str = "text-embedding-3-small"
    base_url: str = DEFAULT_BASE_URL
    api_key_env: str = "OPENAI_API_KEY"
    api_key: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(60.0, gt=0)
    batch_size: int = Field(64, ge=1, le=2048)
    dimensions: int | None = Field(None, ge=1)


def build(cfg: OpenAIEmbedderConfig, b: BuildContext) -> OpenAIEmbedder:
    return OpenAIEmbedder(
        b.name, model_id=cfg.model, base_url=cfg.base_url, api_key=cfg.api_key,
        api_key_env=cfg.api_key_env, headers=cfg.headers, timeout=cfg.timeout,
        batch_size=cfg.batch_size, dimensions=cfg.dimensions,
    )
