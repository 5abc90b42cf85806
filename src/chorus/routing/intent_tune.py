"""Contrastive fine-tuning of a sentence encoder on intent examples (the first stage of
SetFit): pairs of two examples of the same intent are pulled together and every other
pair in the batch pushed apart (in-batch negatives: the symmetric cross-entropy of
``sentence-transformers``' MultipleNegativesRankingLoss, scale 20). A batch never holds
two pairs of one intent, so no negative is a false one.

Runs on the CPU with torch and sentence-transformers (the ``embeddings`` extra); the
result is a sentence-transformers folder that the numpy MiniLM backend then runs for
every query, so serving never imports torch.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chorus.core.errors import MissingDependency
from chorus.embeddings import Vectors

__all__ = ["EPOCHS", "LEARNING_RATE", "finetune", "pair_batches"]

#: Passes over the examples (one positive pair per example per pass).
EPOCHS = 4
LEARNING_RATE = 2e-5
BATCH = 64
SCALE = 20.0


def pair_batches(texts: Sequence[str], labels: Sequence[str], rng: random.Random,
                 batch: int = BATCH) -> list[list[tuple[str, str]]]:
    """One pass: each example with another example of its label (itself when it is the
    only one), in batches where no label appears twice (a lone leftover pair joins an
    earlier batch, one over ``batch``; with a single label there is nothing to learn)."""
    by: dict[str, list[str]] = {}
    for text, label in zip(texts, labels, strict=True):
        by.setdefault(label, []).append(text)
    queues: dict[str, list[tuple[str, str]]] = {}
    for label, group in by.items():
        pairs = []
        for i, a in enumerate(group):
            others = group[:i] + group[i + 1:]
            pairs.append((a, rng.choice(others) if others else a))
        rng.shuffle(pairs)
        queues[label] = pairs
    out: list[list[tuple[str, str]]] = []
    held: list[set[str]] = []  # the labels in each batch of ``out``
    while queues:
        order = list(queues)
        rng.shuffle(order)
        for start in range(0, len(order), batch):
            names = order[start:start + batch]
            chunk = [queues[label].pop() for label in names]
            if len(chunk) > 1:
                out.append(chunk)
                held.append(set(names))
                continue
            # A lone pair has no negative: it joins a batch without its label.
            home = next((i for i, have in enumerate(held) if names[0] not in have), None)
            if home is not None:
                out[home].append(chunk[0])
                held[home].add(names[0])
        queues = {label: q for label, q in queues.items() if q}
    rng.shuffle(out)
    return out


def finetune(folder: Path, texts: Sequence[str], labels: Sequence[str], out: Path, *,
             epochs: int = EPOCHS, seed: int = 0,
             on_step: Callable[[int, int], None] | None = None) -> Callable[[list[str]], Vectors]:
    """Fine-tune the sentence-transformers model in ``folder`` on the examples, save it to
    ``out``, and return a function that embeds texts with it (unit rows)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise MissingDependency("sentence-transformers", "fine-tuning the intent encoder",
                                "embeddings") from exc
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    torch.manual_seed(seed)
    rng = random.Random(seed)
    model: Any = SentenceTransformer(str(folder), device="cpu")
    prepare = getattr(model, "preprocess", None) or model.tokenize
    passes = [pair_batches(texts, labels, rng) for _ in range(epochs)]
    total = sum(len(p) for p in passes)
    opt = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)
    model.train()
    step = 0
    for batches in passes:
        for chunk in batches:
            a = model(prepare([p[0] for p in chunk]))["sentence_embedding"]
            b = model(prepare([p[1] for p in chunk]))["sentence_embedding"]
            a = torch.nn.functional.normalize(a, dim=-1)
            b = torch.nn.functional.normalize(b, dim=-1)
            sims = a @ b.T * SCALE
            target = torch.arange(len(chunk))
            loss = (torch.nn.functional.cross_entropy(sims, target)
                    + torch.nn.functional.cross_entropy(sims.T, target)) / 2
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            step += 1
            if on_step is not None:
                on_step(step, total)
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out), create_model_card=False)

    def embed(batch: list[str]) -> Vectors:
        rows = model.encode(batch, batch_size=64, convert_to_numpy=True,
                            normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(rows, dtype=np.float32)

    return embed
