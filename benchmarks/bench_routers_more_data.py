"""RouteLLM MMLU: do the learned routers reach RouteLLM's published APGR (0.603) with
more training items than the 1,500 of the fixed split?

The test half is the one `bench_routers.py` uses (the first 1,500 of a seed-0 shuffle);
the routers are fitted on the 12,537 items outside it instead of the 1,500 of the train
half, each kind at three seeds (the fit's holdout split and initialisation), and the
mean of each kind's three predictions, and of all of them, as ensembles. APGR is
measured by the same code as ``chorus router eval``.

    .venv/bin/python benchmarks/bench_routers_more_data.py [--data ../shared/data]
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from _machine import machine  # noqa: E402

from chorus.embeddings.local import MiniLMEmbedder  # noqa: E402
from chorus.eval.convert import routellm_outcomes  # noqa: E402
from chorus.eval.metrics import Point, router_metrics  # noqa: E402
from chorus.eval.routers import (  # noqa: E402
    _scores_costs,
    embed_rows,
    embedding_cache,
    fit_router,
    single_points,
)
from chorus.routing.learned import sweep  # noqa: E402

SEEDS = (0, 1, 2)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared"
                                              / "data"))
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"
                                             / "routers_more_data.json"))
    args = parser.parse_args()
    started = time.time()
    rows = list(routellm_outcomes(Path(args.data) / "routellm", "mmlu"))
    random.Random(0).shuffle(rows)  # as bench_routers.split: test = the first 1,500
    test, train_half, train_all = rows[:1500], rows[1500:3000], rows[1500:]
    cache = Path(os.environ.get("CHORUS_BENCH_CACHE") or embedding_cache())
    embedder = MiniLMEmbedder()
    x_test = np.asarray(await embed_rows(test, embedder, cache), float)
    results: list[dict[str, Any]] = []
    for label, train in (("train half", train_half), ("all but the test half", train_all)):
        x = np.asarray(await embed_rows(train, embedder, cache), float)
        preds: dict[str, list[np.ndarray]] = {}
        for kind in ("knn", "mlp", "mf"):
            for seed in SEEDS if kind != "knn" else (0,):  # knn's fit has no randomness
                router = fit_router(train, x, kind=kind, seed=seed)  # type: ignore[arg-type]
                preds.setdefault(kind, []).append(router.predict(x_test))
        models, rel = list(router.models), router.relative_costs()
        scores, costs = _scores_costs(test, models)
        singles = single_points(test, models)

        def apgr(pred: np.ndarray, rel: Any = rel, scores: Any = scores, costs: Any = costs,
                 singles: Any = singles) -> float:
            curve = [Point(c, q, k) for k, c, q in sweep(pred, rel, scores, costs)]
            return float(router_metrics(curve, singles).apgr)

        row: dict[str, Any] = {"train": label, "items": len(train)}
        for kind, ps in preds.items():
            row[kind] = [round(apgr(p), 3) for p in ps]
            row[f"{kind} mean of seeds"] = round(apgr(np.mean(ps, axis=0)), 3)
        every = [np.mean(ps, axis=0) for ps in preds.values()]
        row["knn + mlp + mf"] = round(apgr(np.mean(every, axis=0)), 3)
        results.append(row)
        print(json.dumps(row), flush=True)
    cmd = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    print(f"Command: `{cmd}`  \nMachine: {machine()}  \n"
          f"Total time: {time.time() - started:.0f} s")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"command": cmd, "machine": machine(),
                                          "results": results}, indent=2) + "\n", "utf-8")


if __name__ == "__main__":
    asyncio.run(main())
