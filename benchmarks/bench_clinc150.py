"""CLINC150 intent routing: the embedding router (nearest centroid) against the intent
router (a logistic-regression head, on MiniLM as bundled and on MiniLM fine-tuned on the
examples), with 5, 10 and all (100) examples per intent, out-of-scope abstention at a
threshold chosen on val, and the latency of one decision (encoding the query included).

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
- Intent routers: ``chorus.eval.intents.fit_intents`` (what ``chorus router fit
  --intents`` runs) on the same k examples, with val (3,000 in-scope + 100 out-of-scope)
  choosing C and the threshold; served from YAML (``type: intent``) by the same bench
  runner. The fine-tuned encoder is trained for k = 5 and 10 only (--tune; all 15,000
  examples would take about a quarter of an hour on these two cores).
- Latency: each classifier's ``classify`` on --latency distinct test queries not seen
  before (fresh embedders, numpy MiniLM, no memo hits), the classifiers interleaved query
  by query so they share the machine's load; the load average is printed with it.
- Embeddings are cached in $CHORUS_BENCH_CACHE (default /tmp/chorus-bench-cache).

    .venv/bin/python benchmarks/bench_clinc150.py [--data ../shared/data] [--test 1500]
        [--tune 5,10] [--latency 300]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _clinc150 import load as load_clinc150  # noqa: E402
from _machine import machine  # noqa: E402

from chorus.config import Config  # noqa: E402
from chorus.core.types import Request  # noqa: E402
from chorus.embeddings import Embedder  # noqa: E402
from chorus.embeddings.local import MiniLMEmbedder, model_folder  # noqa: E402
from chorus.eval.bench import run_bench  # noqa: E402
from chorus.eval.datasets import Item  # noqa: E402
from chorus.eval.intents import fit_intents, readable_label  # noqa: E402
from chorus.eval.report import wilson  # noqa: E402
from chorus.eval.scorers import make_scorer  # noqa: E402
from chorus.routing.embedding import EmbeddingClassifier, centroids  # noqa: E402
from chorus.routing.intent import IntentClassifier, IntentHead  # noqa: E402
from chorus.routing.intent_tune import EPOCHS  # noqa: E402

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
    return _yaml({"type": "embedding", "examples": examples, "method": "centroid",
                  "threshold": threshold}, list(examples))


def _yaml(classifier: dict[str, Any], intents: list[str]) -> str:
    routes: dict[str, Any] = {i: {"provider": "scripted", "default": i} for i in intents}
    routes[OOS] = {"provider": "scripted", "default": OOS}
    doc = {"systems": {"intents": {"kind": "router", "classifier": classifier,
                                   "routes": routes, "default": OOS}}}
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1000)


async def run_router(cfg_path: Path, texts: list[str], vectors: np.ndarray,
                     items: list[Item], gold: np.ndarray) -> dict[str, Any]:
    """The Router in ``cfg_path`` on the test items through chorus's bench runner, its
    embedder's memo holding ``vectors`` of ``texts`` (the test items, and the examples
    of a centroid router, computed before by the same model)."""
    router = Config.load(cfg_path).get("intents")
    emb = router.classifier.embedder  # type: ignore[attr-defined]
    emb._memo_size = len(texts) + 10_000
    emb.remember(texts, vectors)
    t0 = time.time()
    res = (await run_bench({"router": router}, items, make_scorer("exact"),
                           concurrency=4))["router"]
    said = np.array([r.text for r in res])
    in_scope = gold != OOS
    correct_in = int(np.sum(said[in_scope] == gold[in_scope]))
    n_in = int(in_scope.sum())
    abstained = said == OOS
    tp = int(np.sum(abstained & ~in_scope))
    lo, hi = wilson(correct_in, n_in)
    return {"in_scope_accuracy": correct_in / n_in, "in_scope_ci": [lo, hi],
            "overall_accuracy": float(np.mean(said == gold)),
            "oos_precision": tp / max(int(abstained.sum()), 1),
            "oos_recall": tp / int((~in_scope).sum()), "in_scope_items": n_in,
            "oos_items": int((~in_scope).sum()), "run_s": round(time.time() - t0, 1)}


def load_average() -> str:
    try:
        return " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


async def latency(classifiers: dict[str, Any], queries: list[str]) -> dict[str, Any]:
    """Per classifier: p50 and p90 ms of ``classify`` (query encoding included), the
    classifiers taking turns on each query."""
    times: dict[str, list[float]] = {name: [] for name in classifiers}
    for clf in classifiers.values():  # load the models, warm up
        for q in ("hello there", "what time is it"):
            await clf.classify(Request.of(q))
    before = load_average()
    for q in queries:
        for name, clf in classifiers.items():
            t = time.perf_counter()
            await clf.classify(Request.of(q))
            times[name].append((time.perf_counter() - t) * 1000)
    out: dict[str, Any] = {"queries": len(queries),
                           "load_average_before": before, "load_average_after": load_average()}
    for name, ts in times.items():
        qs = statistics.quantiles(ts, n=10)
        out[name] = {"p50_ms": round(statistics.median(ts), 2), "p90_ms": round(qs[-1], 2)}
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(HERE.parents[1] / "shared" / "data"))
    parser.add_argument("--test", type=int, default=1500)
    parser.add_argument("--tune", default="5,10",
                        help="the k (examples per intent) to fine-tune the encoder for")
    parser.add_argument("--latency", type=int, default=300, help="queries timed")
    parser.add_argument("--out", default=str(HERE / "results" / "clinc150.json"))
    args = parser.parse_args()
    tune = {int(k) for k in args.tune.split(",") if k}
    started = time.time()
    cache = Path(os.environ.get("CHORUS_BENCH_CACHE", "/tmp/chorus-bench-cache"))
    clinc = load_clinc150(args.data, args.test)
    data, by_intent, intents = clinc.data, clinc.by_intent, clinc.intents
    test, val = clinc.test, clinc.val

    embedder = MiniLMEmbedder()
    train_texts = [t for i in intents for t in by_intent[i]]
    x_train = await embed_cached(train_texts, embedder, cache)
    x_val = await embed_cached([t for t, _ in val], embedder, cache)
    test_texts = [t for t, _ in test]
    x_test = await embed_cached(test_texts, embedder, cache)
    row_of = {t: j for j, t in enumerate(train_texts)}
    for j, (t, _) in enumerate(val):  # a few val texts are train texts too
        row_of.setdefault(t, len(train_texts) + j)
    # The intents' names, as words: fit_intents may add them to the examples (val decides).
    names = sorted({readable_label(i) for i in intents} - set(row_of))
    for j, t in enumerate(names):
        row_of[t] = len(train_texts) + len(val) + j
    x_known = np.concatenate([x_train, x_val, await embedder.embed(names)])
    embed_s = time.time() - started

    def frozen(texts: list[str]) -> np.ndarray:
        return np.stack([x_known[row_of[t]] for t in texts])

    val_gold = np.array([i for _, i in val])
    val_oos = val_gold == OOS
    items = [Item(f"clinc-{n}", text, intent) for n, (text, intent) in enumerate(test)]
    gold = np.array([i for _, i in test])
    in_scope = gold != OOS
    results = []
    heads: dict[str, Path] = {}
    for k in (5, 10, 0):
        examples = clinc.examples(k)
        owners = [n for n, i in enumerate(intents) for _ in examples[i]]
        rows = np.stack([x_train[row_of[t]] for i in intents for t in examples[i]])
        cents = centroids(rows, owners, len(intents))
        sims = x_val @ cents.T
        pred = np.array(intents)[sims.argmax(axis=1)]
        threshold, bal = calibrate(sims.max(axis=1), pred == val_gold, val_oos)
        cfg_path = cache / f"clinc150-router-{k or 'all'}.yaml"
        cfg_path.write_text(router_yaml(examples, threshold), "utf-8")
        r = await run_router(cfg_path, train_texts + test_texts,
                             np.concatenate([x_train, x_test]), items, gold)
        raw = float(np.mean(np.array(intents)[(x_test[in_scope] @ cents.T).argmax(axis=1)]
                            == gold[in_scope]))
        label = k or "all (100)"
        results.append({"examples_per_intent": label, "router": "centroid",
                        "threshold": threshold, "val_balanced_accuracy": bal,
                        "accuracy_no_threshold": raw, **r})

        train = [(t, i) for i in intents for t in examples[i]]
        for tuned in ((False, True) if k in tune else (False,)):
            name = "head, MiniLM fine-tuned" if tuned else "head"
            folder = cache / f"clinc150-intent-{k or 'all'}{'-tuned' if tuned else ''}"
            t0 = time.time()
            if tuned:
                head = fit_intents(train, folder, val=val, tune_epochs=EPOCHS,
                                   encoder=model_folder(), seed=0)
                enc = MiniLMEmbedder(path=head.encoder)  # not cached: a new model each run
                xt = np.concatenate([await enc.embed(test_texts[i:i + 256])
                                     for i in range(0, len(test_texts), 256)])
            else:
                head = fit_intents(train, folder, frozen, val=val, seed=0)
                xt = x_test
            fit_s = time.time() - t0
            cfg_path = folder.with_suffix(".yaml")
            cfg_path.write_text(_yaml({"type": "intent", "path": str(folder)}, intents))
            r = await run_router(cfg_path, test_texts, xt, items, gold)
            raw = float(np.mean(np.array(head.predict(xt[in_scope], -np.inf)) == gold[in_scope]))
            results.append({"examples_per_intent": label, "router": name,
                            "threshold": head.threshold, "c": head.info["c"],
                            "mix": head.mix, "label_names": head.info["label_names"],
                            "val_balanced_accuracy": head.info["val_score"],
                            "accuracy_no_threshold": raw, "fit_s": round(fit_s, 1), **r})
            heads[f"{name}, {label}"] = folder

    # One decision, side by side: the centroid router, the head, the fine-tuned head (10).
    queries = [t for t, _ in random.Random(1).sample(data["test"], args.latency)]
    ex10 = {i: random.Random(0).sample(by_intent[i], 10) for i in intents}
    cent_emb = MiniLMEmbedder(backend="numpy")
    cent = EmbeddingClassifier(cent_emb, ex10, threshold=0.44)
    cent_emb.remember([t for v in ex10.values() for t in v],
                      frozen([t for v in ex10.values() for t in v]))
    clfs: dict[str, Any] = {"centroid (10)": cent,
                            "head (10)": IntentClassifier(IntentHead.load(heads["head, 10"]),
                                                          MiniLMEmbedder(backend="numpy"))}
    if "head, MiniLM fine-tuned, 10" in heads:
        h = IntentHead.load(heads["head, MiniLM fine-tuned, 10"])
        clfs["head, fine-tuned (10)"] = IntentClassifier(
            h, MiniLMEmbedder(path=h.encoder, backend="numpy"))
    lat = await latency(clfs, queries)

    cmd = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    print(f"Command: `{cmd}`  \nMachine: {machine()}  \nTotal time: "
          f"{time.time() - started:.0f} s (embedding {embed_s:.0f} s, cached after the "
          f"first run)\n")
    print("| examples per intent | router | in-scope accuracy, no threshold | in-scope "
          "accuracy at threshold (95 % CI) | overall accuracy with abstention | threshold "
          "(val) | mix (val) | names (val) | out-of-scope precision | out-of-scope recall | "
          "fit s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['examples_per_intent']} | {r['router']} | "
              f"{r['accuracy_no_threshold']:.3f} | {r['in_scope_accuracy']:.3f} "
              f"({r['in_scope_ci'][0]:.3f}-{r['in_scope_ci'][1]:.3f}) | "
              f"{r['overall_accuracy']:.3f} | {r['threshold']:.3f} | {r.get('mix', '')} | "
              f"{r.get('label_names', '')} | "
              f"{r['oos_precision']:.3f} | {r['oos_recall']:.3f} | {r.get('fit_s', '')} |")
    print(f"\nLatency of one decision, {lat['queries']} queries, load average "
          f"{lat['load_average_before']} before, {lat['load_average_after']} after:\n")
    print("| classifier | p50 ms | p90 ms |\n|---|---|---|")
    for name in clfs:
        print(f"| {name} | {lat[name]['p50_ms']:.2f} | {lat[name]['p90_ms']:.2f} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"command": cmd, "machine": machine(),
                                          "results": results, "latency": lat},
                                         indent=2) + "\n", "utf-8")


if __name__ == "__main__":
    asyncio.run(main())
