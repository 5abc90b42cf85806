"""CLINC150 intent routing with the embedding router: accuracy with 5, 10 and all (100)
examples per intent, and out-of-scope abstention at a threshold calibrated on val.

Each setting is a Router built from YAML: an `embedding` classifier (local MiniLM,
nearest centroid) whose examples are k training utterances per intent (a fixed-seed
sample, seed 0), with one route per intent to a scripted model that answers the intent's
name and the default route `oos` for abstentions; chorus's bench runner (the code behind
`chorus bench`) runs it with the exact-match scorer.

- Test: a fixed-seed sample (seed 0) of 1,500 of the 4,500 in-scope test utterances, plus
  all 1,000 out-of-scope test utterances (oos_test).
- Threshold: per setting, the cosine similarity that maximises the balanced accuracy
  (mean of in-scope accuracy and out-of-scope recall) on val (3,000 in-scope) + oos_val
  (100), computed with the same centroid functions the classifier uses.
- Embeddings are cached in $CHORUS_BENCH_CACHE (default /tmp/chorus-bench-cache).

    .venv/bin/python benchmarks/bench_clinc150.py [--data ../shared/data] [--test 1500]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

from chorus.config import Config  # noqa: E402
from chorus.embeddings import Embedder  # noqa: E402
from chorus.embeddings.local import MiniLMEmbedder  # noqa: E402
from chorus.eval.bench import run_bench  # noqa: E402
from chorus.eval.datasets import Item  # noqa: E402
from chorus.eval.report import wilson  # noqa: E402
from chorus.eval.scorers import make_scorer  # noqa: E402
from chorus.routing.embedding import centroids  # noqa: E402

HERE = Path(__file__).resolve().parent
OOS = "oos"


async def embed_cached(texts: list[str], embedder: Embedder, cache: Path) -> np.ndarray:
    h = hashlib.sha1(embedder.name.encode())
    for t in texts:
        h.update(t.encode() + b"\0")
    path = cache / f"clinc150-{h.hexdigest()[:16]}.npy"
    if path.is_file():
        return np.load(path)
    x = np.concatenate([await embedder.embed(texts[i:i + 256])
                        for i in range(0, len(texts), 256)])
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, x)
    return x


def calibrate(top: np.ndarray, right: np.ndarray, is_oos: np.ndarray) -> tuple[float, float]:
    """The threshold with the best balanced accuracy: in-scope items must be right and
    above it, out-of-scope items below it. Returns (threshold, balanced accuracy)."""
    best = (-1.0, -1.0)
    for t in np.unique(np.round(top, 4)):
        in_acc = float(np.mean(right[~is_oos] & (top[~is_oos] >= t)))
        oos_rec = float(np.mean(top[is_oos] < t))
        bal = (in_acc + oos_rec) / 2
        if bal > best[1]:
            best = (float(t), bal)
    return best


def router_yaml(examples: dict[str, list[str]], threshold: float) -> str:
    routes: dict[str, Any] = {i: {"provider": "scripted", "default": i} for i in examples}
    routes[OOS] = {"provider": "scripted", "default": OOS}
    doc = {"systems": {"intents": {
        "kind": "router", "classifier": {"type": "embedding", "examples": examples,
                                         "method": "centroid", "threshold": threshold},
        "routes": routes, "default": OOS}}}
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1000)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(HERE.parents[1] / "shared" / "data"))
    parser.add_argument("--test", type=int, default=1500)
    parser.add_argument("--out", default=str(HERE / "results" / "clinc150.json"))
    args = parser.parse_args()
    started = time.time()
    cache = Path(os.environ.get("CHORUS_BENCH_CACHE", "/tmp/chorus-bench-cache"))
    data = json.loads((Path(args.data) / "clinc150" / "data_full.json").read_text("utf-8"))
    by_intent: dict[str, list[str]] = {}
    for text, intent in data["train"]:
        by_intent.setdefault(intent, []).append(text)
    intents = sorted(by_intent)
    test = random.Random(0).sample(data["test"], args.test) + data["oos_test"]
    val = data["val"] + data["oos_val"]

    embedder = MiniLMEmbedder()
    train_texts = [t for i in intents for t in by_intent[i]]
    x_train = await embed_cached(train_texts, embedder, cache)
    x_val = await embed_cached([t for t, _ in val], embedder, cache)
    x_test = await embed_cached([t for t, _ in test], embedder, cache)
    row_of = {t: j for j, t in enumerate(train_texts)}
    embed_s = time.time() - started

    val_gold = np.array([i for _, i in val])
    val_oos = val_gold == OOS
    items = [Item(f"clinc-{n}", text, intent) for n, (text, intent) in enumerate(test)]
    gold = np.array([i for _, i in test])
    results = []
    for k in (5, 10, 0):
        rng = random.Random(0)
        examples = {i: (rng.sample(by_intent[i], k) if k else list(by_intent[i]))
                    for i in intents}
        owners = [n for n, i in enumerate(intents) for _ in examples[i]]
        rows = np.stack([x_train[row_of[t]] for i in intents for t in examples[i]])
        cents = centroids(rows, owners, len(intents))
        sims = x_val @ cents.T
        pred = np.array(intents)[sims.argmax(axis=1)]
        threshold, bal = calibrate(sims.max(axis=1), pred == val_gold, val_oos)

        cfg_path = cache / f"clinc150-router-{k or 'all'}.yaml"
        cfg_path.write_text(router_yaml(examples, threshold), "utf-8")
        cfg = Config.load(cfg_path)
        # Serve the cached MiniLM vectors of these very texts from the shared embedder's
        # memo (made large enough to hold them) instead of embedding them again.
        shared = cfg.builder.embedder("minilm")
        shared._memo_size = len(train_texts) + len(test) + 10
        for t, v in zip(train_texts, x_train, strict=True):
            shared._memo[t] = v
        for (t, _), v in zip(test, x_test, strict=True):
            shared._memo[t] = v
        router = cfg.get("intents")
        t0 = time.time()
        res = (await run_bench({"router": router}, items, make_scorer("exact"),
                               concurrency=4))["router"]
        run_s = time.time() - t0
        said = np.array([r.text for r in res])
        in_scope = gold != OOS
        correct_in = int(np.sum(said[in_scope] == gold[in_scope]))
        n_in = int(in_scope.sum())
        abstained = said == OOS
        tp = int(np.sum(abstained & ~in_scope))
        prec = tp / max(int(abstained.sum()), 1)
        rec = tp / int((~in_scope).sum())
        # Accuracy with no threshold: the nearest centroid on the in-scope test items.
        sims_t = x_test[in_scope] @ cents.T
        raw = float(np.mean(np.array(intents)[sims_t.argmax(axis=1)] == gold[in_scope]))
        lo, hi = wilson(correct_in, n_in)
        results.append({"examples_per_intent": k or "all (100)", "threshold": threshold,
                        "val_balanced_accuracy": bal, "in_scope_accuracy": correct_in / n_in,
                        "in_scope_ci": [lo, hi], "accuracy_no_threshold": raw,
                        "oos_precision": prec, "oos_recall": rec,
                        "in_scope_items": n_in, "oos_items": int((~in_scope).sum()),
                        "run_s": round(run_s, 1)})
    cmd = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    print(f"Command: `{cmd}`  \nMachine: {machine()}  \nTotal time: "
          f"{time.time() - started:.0f} s (embedding {embed_s:.0f} s, cached after the "
          f"first run)\n")
    print("| examples per intent | accuracy, no threshold | accuracy at threshold (95 % CI) "
          "| threshold (val) | out-of-scope precision | out-of-scope recall |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['examples_per_intent']} | {r['accuracy_no_threshold']:.3f} | "
              f"{r['in_scope_accuracy']:.3f} ({r['in_scope_ci'][0]:.3f}-"
              f"{r['in_scope_ci'][1]:.3f}) | {r['threshold']:.3f} | {r['oos_precision']:.3f} "
              f"| {r['oos_recall']:.3f} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"command": cmd, "machine": machine(),
                                          "results": results}, indent=2) + "\n", "utf-8")


if __name__ == "__main__":
    asyncio.run(main())
