"""CLINC150 with few examples per intent: heads on other features and an ensemble, every
choice made on val, to see whether anything beats the head on the fine-tuned MiniLM.

Needs the vectors and the fine-tuned encoder that ``benchmarks/bench_clinc150.py`` left
in $CHORUS_BENCH_CACHE (default /tmp/chorus-bench-cache) for the same k; the fine-tuned
encoder's vectors of train, val and test are computed here (sentence-transformers, two
threads) and kept beside them.

- frozen: the head (``fit_head``: C, mix and threshold chosen on val) on bundled MiniLM.
- tuned: the same head on the MiniLM fine-tuned on the k examples.
- both: the head on the two vectors side by side (concatenated, divided by sqrt 2).
- head + centroid: per feature set, the head's probabilities mixed with a softmax over
  the cosine to each intent's centroid, the weight (0-1) and softmax scale (10, 20, 40)
  chosen by in-scope accuracy on val.

    .venv/bin/python benchmarks/bench_clinc150_features.py [--k 5]
"""

from __future__ import annotations

import argparse
import glob
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
from _clinc150 import load as load_clinc150

from chorus.routing.embedding import centroids
from chorus.routing.intent import IntentHead, fit_head

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("CHORUS_BENCH_CACHE", "/tmp/chorus-bench-cache"))


def mixed(head: IntentHead, cents: Any, x: Any, gold: Any, w: float, scale: float) -> float:
    """Accuracy of w * the head's probabilities + (1 - w) * softmax(scale * cosine to
    each centroid)."""
    p = head.proba(x)
    z = (x @ cents.T) * scale
    q = np.exp(z - z.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    return float(np.mean(np.array(head.labels)[(w * p + (1 - w) * q).argmax(1)] == gold))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(HERE.parents[1] / "shared" / "data"))
    parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args()
    k = args.k
    clinc = load_clinc150(args.data)
    by, intents, test, val = clinc.by_intent, clinc.intents, clinc.test, clinc.val
    # bench_clinc150.py's frozen vectors: train (15,000 rows), val (3,100), test (2,500).
    # (named clinc150-<16 hex digits>.npy; the fine-tuned vectors below are named apart).
    frozen = {np.load(f).shape[0]: np.load(f) for f in glob.glob(str(CACHE / "clinc150-*.npy"))
              if re.fullmatch(r"clinc150-[0-9a-f]{16}\.npy", Path(f).name)}
    x_train, x_val, x_test = frozen[15000], frozen[3100], frozen[2500]
    row = {t: j for j, t in enumerate(t for i in intents for t in by[i])}
    examples = clinc.examples(k)
    train = [(t, i) for i in intents for t in examples[i]]
    feats: dict[str, tuple[Any, ...]] = {
        "frozen": (np.stack([x_train[row[t]] for t, _ in train]), x_val, x_test)}
    tuned = []
    for name, rows in (("train", train), ("val", val), ("test", test)):
        path = CACHE / f"clinc150-tuned{k}-{name}.npy"
        if not path.is_file():
            import torch
            from sentence_transformers import SentenceTransformer

            torch.set_num_threads(2)
            model = SentenceTransformer(str(CACHE / f"clinc150-intent-{k}-tuned" / "encoder"),
                                        device="cpu")
            np.save(path, model.encode([t for t, _ in rows], batch_size=64,
                                       normalize_embeddings=True, convert_to_numpy=True))
        tuned.append(np.load(path))
    feats["tuned"] = tuple(tuned)
    feats["both"] = tuple(np.concatenate([a, b], 1) / np.sqrt(2)
                          for a, b in zip(feats["frozen"], tuned, strict=True))
    vy = np.array([i for _, i in val])
    gold = np.array([i for _, i in test])
    vin, tin = vy != "oos", gold != "oos"
    labels = [i for _, i in train]
    owners = [intents.index(i) for i in labels]
    print(f"k = {k}; in-scope accuracy without a threshold; overall with abstention\n")
    print("| features | C | mix | val balanced | val in-scope | test in-scope | "
          "test overall |\n|---|---|---|---|---|---|---|")
    for name, (a, v, te) in feats.items():
        head = fit_head(a, labels, val_x=v, val_labels=list(vy))
        said = np.array([p or "oos" for p in head.predict(te)])
        print(f"| {name} | {head.info['c']:g} | {head.mix:g} | {head.info['val_score']:.4f} | "
              f"{np.mean(np.array(head.predict(v[vin], -np.inf)) == vy[vin]):.4f} | "
              f"{np.mean(np.array(head.predict(te[tin], -np.inf)) == gold[tin]):.4f} | "
              f"{np.mean(said == gold):.4f} |")
        if name == "both":
            continue
        assert head.labels == intents  # the centroids' order
        cents = centroids(a, owners, len(intents))

        best = max((mixed(head, cents, v[vin], vy[vin], w, s), w, s)
                   for w in (0, .25, .5, .75, 1) for s in (10, 20, 40))
        on_test = mixed(head, cents, te[tin], gold[tin], best[1], best[2])
        print(f"| {name}, head + centroid (weight {best[1]:g}, scale {best[2]:g}) | | | | "
              f"{best[0]:.4f} | {on_test:.4f} | |")


if __name__ == "__main__":
    main()
