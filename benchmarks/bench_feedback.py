"""Learning from real outcomes, replayed offline: MMLU-Pro outcomes of four models of
very different quality fed one item at a time through ``record_outcome`` of a weighted
ensemble (Hedge weights, eta 0.5, starting equal) and of a kNN learned router (fitted on
the train half, then shifted by what the test half's outcomes say). Prints each model's
weight share and the router's predicted mean score as outcomes accumulate.

Same 4,000-question sample and 50/50 split (seed 0) as bench_mmlu_pro.py; the outcomes
replayed are the 2,000 test questions in their shuffled order.

    .venv/bin/python benchmarks/bench_feedback.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

from chorus.embeddings.local import MiniLMEmbedder  # noqa: E402
from chorus.eval.convert import mmlu_pro_outcomes  # noqa: E402
from chorus.eval.replay import ReplayModel  # noqa: E402
from chorus.eval.routers import embed_rows, embedding_cache, fit_router  # noqa: E402
from chorus.patterns.weighted import Weighted  # noqa: E402

HERE = Path(__file__).resolve().parent
MODELS = ["gemini-1.5-pro-002", "Meta-Llama-3_1-70B-Instruct", "Mixtral-8x7B-Instruct-v0.1",
          "Llama-2-7b-hf"]
CHECKPOINTS = (0, 10, 50, 200, 1000, 2000)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(HERE.parents[1] / "shared" / "data"))
    parser.add_argument("--out", default=str(HERE / "results" / "feedback.json"))
    args = parser.parse_args()
    started = time.time()
    cache = Path(os.environ.get("CHORUS_BENCH_CACHE") or embedding_cache())
    rows = mmlu_pro_outcomes(Path(args.data) / "mmlu_pro", models=MODELS)
    random.Random(0).shuffle(rows)
    rows = rows[:4000]
    train, test = rows[2000:], rows[:2000]
    x_train = await embed_rows(train, MiniLMEmbedder(), cache)
    router = fit_router(train, x_train, kind="knn", models=MODELS, seed=0)
    ens = Weighted("ensemble", [ReplayModel(m, test, model=m) for m in MODELS],
                   scorer=lambda request, text: 1.0, eta=0.5)
    base = router.base_means()
    table = []
    for i in range(len(test) + 1):
        if i in CHECKPOINTS:
            total = sum(ens.weights.values())
            # The router's predicted mean score per model: training mean + feedback shift.
            shift = router.shifts()
            means = [float(b + s) for b, s in zip(base, shift, strict=True)]
            table.append({"outcomes": i, "weight_share": {m: ens.weights[m] / total
                                                          for m in MODELS},
                          "router_mean": dict(zip(MODELS, means, strict=True))})
        if i == len(test):
            break
        for m in MODELS:
            score = test[i].outcomes[m].score
            if score is not None:
                ens.record_outcome(m, score)
                router = router.with_outcome(m, score)
    accuracy = {m: float(np.mean([r.outcomes[m].score or 0.0 for r in test])) for m in MODELS}
    cmd = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    print(f"Command: `{cmd}`  \nMachine: {machine()}  \nTotal time: "
          f"{time.time() - started:.0f} s\n")
    short = {m: m.replace("Meta-Llama-3_1-70B-Instruct", "Llama-3.1-70B-Instr")
             .replace("Mixtral-8x7B-Instruct-v0.1", "Mixtral-8x7B-Instr")
             .replace("gemini-1.5-pro-002", "gemini-1.5-pro") for m in MODELS}
    print("| outcomes replayed | " + " | ".join(
        f"{short[m]} (acc {accuracy[m]:.3f})" for m in MODELS) + " |")
    print("|---|" + "---|" * len(MODELS))
    for row in table:
        cells = " | ".join(f"{row['weight_share'][m]:.3f} / {row['router_mean'][m]:.3f}"
                           for m in MODELS)
        print(f"| {row['outcomes']} | {cells} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"command": cmd, "machine": machine(),
                                          "test_accuracy": accuracy, "checkpoints": table},
                                         indent=2) + "\n", "utf-8")


if __name__ == "__main__":
    asyncio.run(main())
