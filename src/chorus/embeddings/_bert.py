"""A BERT sentence encoder in numpy: MiniLM's forward pass without torch.

all-MiniLM-L6-v2 is a 6-layer BERT (hidden size 384, 12 heads), then the mean of its token
vectors, then L2 normalisation (its ``modules.json``). Importing torch, transformers and
sentence-transformers to run it costs 6-15 s per process; this runs the same arithmetic in
numpy on the weights read with safetensors and the text cut by Hugging Face's tokenizers,
and loads in a fraction of a second. ``tests/embeddings`` checks it against
sentence-transformers on real text.

A text longer than the model's window (256 word pieces for MiniLM) is embedded whole, not
cut: its word pieces are split into windows, each run on its own, and the token vectors of
all windows averaged together (the mean pooling the model was trained with, over the whole
text).

A small call (a query or a few: at most ``ONE_THREAD_TOKENS`` word pieces) runs BLAS on
one thread (threadpoolctl). On two idle cores a second thread saves about a quarter of a
query's encode (7.0 -> 5.3 ms); on two busy cores its waits made it 20 times slower
(15 -> 350 ms), so one thread is the bounded choice (BENCHMARKS.md, "CLINC150").
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from chorus.embeddings._base import Vectors
from chorus.embeddings.threads import one_blas_thread

__all__ = ["BertEncoder", "supported"]

F32 = np.float32
Array = np.ndarray[Any, np.dtype[np.float32]]

#: Calls with at most this many word pieces in all run BLAS on one thread.
ONE_THREAD_TOKENS = 256


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {"list": data}


def supported(folder: Path) -> bool:
    """Whether ``folder`` holds a model this encoder runs exactly: a BERT (absolute
    positions, GELU) in safetensors with a fast tokenizer, mean pooling, and optionally
    normalisation; anything else is left to sentence-transformers."""
    modules = _json(folder / "modules.json").get("list") or []
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if kinds not in (["Transformer", "Pooling", "Normalize"], ["Transformer", "Pooling"]):
        return False
    pooling = _json(folder / str(modules[1].get("path", "")) / "config.json")
    # sentence-transformers < 6 writes pooling_mode_mean_tokens: true; 6 writes
    # pooling_mode: mean (a folder it saved, e.g. a fine-tuned intent encoder).
    modes = {k for k, v in pooling.items() if k.startswith("pooling_mode_") and v is True}
    mean = (modes == {"pooling_mode_mean_tokens"}
            or (not modes and pooling.get("pooling_mode") == "mean"))
    cfg = _json(folder / "config.json")
    return (mean and cfg.get("model_type") == "bert"
            and cfg.get("hidden_act") == "gelu"
            and cfg.get("position_embedding_type", "absolute") == "absolute"
            and (folder / "model.safetensors").is_file()
            and (folder / "tokenizer.json").is_file())


def _layer_norm(x: Array, w: Array, b: Array, eps: float) -> Array:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return np.asarray((x - mean) / np.sqrt(var + eps) * w + b, dtype=F32)


def _erf(x: Array) -> Array:
    # Abramowitz & Stegun 7.1.26: absolute error below 1.5e-7, well under float32's
    # resolution of the activations it feeds.
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027
                                                                      + t * 1.061405429))))
    return np.asarray(sign * (1.0 - poly * np.exp(-a * a)), dtype=F32)


def _gelu(x: Array) -> Array:
    return (0.5 * x * (1.0 + _erf(x / F32(math.sqrt(2.0))))).astype(F32)


class BertEncoder:
    """Encodes texts to unit vectors (the sentence-transformers model in ``folder``)."""

    def __init__(self, folder: Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        cfg = _json(folder / "config.json")
        self.heads = int(cfg["num_attention_heads"])
        self.eps = float(cfg.get("layer_norm_eps", 1e-12))
        window = int(_json(folder / "sentence_bert_config.json").get("max_seq_length", 512))
        self.window = min(window, int(cfg["max_position_embeddings"]))
        modules = _json(folder / "modules.json").get("list") or []
        self.normalise = len(modules) == 3
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        w = load_file(str(folder / "model.safetensors"))
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in w else ""

        def get(name: str) -> Array:
            return np.ascontiguousarray(w[prefix + name], dtype=F32)

        self.words = get("embeddings.word_embeddings.weight")
        self.positions = get("embeddings.position_embeddings.weight")
        self.types = get("embeddings.token_type_embeddings.weight")
        self.ln0 = (get("embeddings.LayerNorm.weight"), get("embeddings.LayerNorm.bias"))
        self.layers: list[dict[str, Array]] = []
        for i in range(int(cfg["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            qkv = [get(p + f"attention.self.{n}.weight") for n in ("query", "key", "value")]
            self.layers.append({
                # One matrix for the three projections: one product instead of three.
                "qkv": np.ascontiguousarray(np.concatenate(qkv).T),
                "qkv_b": np.concatenate([get(p + f"attention.self.{n}.bias")
                                         for n in ("query", "key", "value")]),
                "o": np.ascontiguousarray(get(p + "attention.output.dense.weight").T),
                "o_b": get(p + "attention.output.dense.bias"),
                "ln1": get(p + "attention.output.LayerNorm.weight"),
                "ln1_b": get(p + "attention.output.LayerNorm.bias"),
                "i": np.ascontiguousarray(get(p + "intermediate.dense.weight").T),
                "i_b": get(p + "intermediate.dense.bias"),
                "out": np.ascontiguousarray(get(p + "output.dense.weight").T),
                "out_b": get(p + "output.dense.bias"),
                "ln2": get(p + "output.LayerNorm.weight"),
                "ln2_b": get(p + "output.LayerNorm.bias"),
            })

    @property
    def dimension(self) -> int:
        return int(self.words.shape[1])

    def windows(self, text: str) -> list[list[int]]:
        """The word-piece ids of ``text`` as model inputs: one window when it fits, else
        consecutive windows of ``window - 2`` pieces, each between [CLS] and [SEP]."""
        ids = self.tokenizer.encode(text).ids
        if len(ids) <= self.window:
            return [ids]
        cls, body, sep = ids[0], ids[1:-1], ids[-1]
        step = self.window - 2
        return [[cls, *body[i:i + step], sep] for i in range(0, len(body), step)]

    def _forward(self, batch: list[list[int]]) -> tuple[Array, Array]:
        """Per sequence: the sum of its final token vectors, and its number of tokens."""
        n, length = len(batch), max(len(s) for s in batch)
        ids = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=F32)
        for row, seq in enumerate(batch):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1.0
        x = self.words[ids] + self.positions[:length][None] + self.types[0]
        x = _layer_norm(x, *self.ln0, self.eps)
        heads, dim = self.heads, x.shape[-1] // self.heads
        bias = ((1.0 - mask) * F32(-1e9))[:, None, None, :]
        scale = F32(1.0 / math.sqrt(dim))
        # Projections on (tokens, hidden) matrices, attention on contiguous per-head
        # blocks: numpy hands both to BLAS (strided operands fall back to a slow loop).
        x = x.reshape(n * length, -1)
        for p in self.layers:
            qkv = (x @ p["qkv"] + p["qkv_b"]).reshape(n, length, 3, heads, dim)
            q, k, v = (np.ascontiguousarray(qkv[:, :, j].transpose(0, 2, 1, 3))
                       for j in range(3))
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            ctx = (scores @ v).transpose(0, 2, 1, 3).reshape(n * length, heads * dim)
            x = _layer_norm(ctx @ p["o"] + p["o_b"] + x, p["ln1"], p["ln1_b"], self.eps)
            h = _gelu(x @ p["i"] + p["i_b"])
            x = _layer_norm(h @ p["out"] + p["out_b"] + x, p["ln2"], p["ln2_b"], self.eps)
        x = x.reshape(n, length, -1)
        return (x * mask[..., None]).sum(1), mask.sum(1)

    def encode(self, texts: list[str], batch_size: int = 32,
               forward: Callable[[list[list[int]]], tuple[Array, Array]] | None = None
               ) -> Vectors:
        """One row per text: the mean of its token vectors over all its windows,
        normalised when the model says so. ``forward`` runs a batch of windows instead of
        this encoder's numpy pass (the same model on another engine, e.g. torch): per
        window, the sum of its final token vectors and its number of tokens."""
        owner: list[int] = []
        seqs: list[list[int]] = []
        for i, text in enumerate(texts):
            for seq in self.windows(text):
                owner.append(i)
                seqs.append(seq)
        sums = np.zeros((len(texts), self.dimension), dtype=np.float64)
        counts = np.zeros(len(texts), dtype=np.float64)
        # Shortest first, so each batch pads little.
        order = sorted(range(len(seqs)), key=lambda j: len(seqs[j]))
        small = sum(len(s) for s in seqs) <= ONE_THREAD_TOKENS
        with one_blas_thread() if small else contextlib.nullcontext():
            for start in range(0, len(order), batch_size):
                chunk = order[start:start + batch_size]
                total, n = (forward or self._forward)([seqs[j] for j in chunk])
                for row, j in enumerate(chunk):
                    sums[owner[j]] += total[row]
                    counts[owner[j]] += n[row]
        out = (sums / np.maximum(counts, 1.0)[:, None]).astype(F32)
        if self.normalise:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out = out / np.maximum(norms, F32(1e-12))
        return out
