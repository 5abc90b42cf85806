"""MMLU-Pro, 29 recorded models: single vs vote vs consensus vs cascade vs learned routers,
each a real chorus pattern built from YAML over ``replay`` models and run by the bench
runner behind ``chorus bench`` (``chorus.eval.bench.run_bench``).

Data (from ../shared/data/mmlu_pro, never copied here): the 12,032 questions shuffled with
seed 0; a 4,000-question sample split 50/50 into train and test (the same split as
bench_routers.py, so its cached MiniLM embeddings are reused). Every choice (the best
model, the top 3, the cascade's cheap pair, the routers) is made on the train half; all
figures are on the 2,000 test questions, scored by the answer letter against the gold.

Cost: output characters / 4 as tokens x each model's list price per output token, the
table in chorus/eval/convert.py (as recorded there, not re-checked; see PRICES_NOTE).

    .venv/bin/python benchmarks/bench_mmlu_pro.py [--data ../shared/data]
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

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

from chorus.config import Config  # noqa: E402
from chorus.embeddings.local import MiniLMEmbedder  # noqa: E402
from chorus.eval import report  # noqa: E402
from chorus.eval.bench import run_bench, system_kind  # noqa: E402
from chorus.eval.convert import PRICES_NOTE, mmlu_pro_outcomes  # noqa: E402
from chorus.eval.ensembles import VotePlan, plan_vote, vote_system  # noqa: E402
from chorus.eval.outcomes import as_items, matrices, models_of, write_outcomes  # noqa: E402
from chorus.eval.routers import embed_rows, embedding_cache, fit_router  # noqa: E402
from chorus.eval.scorers import make_scorer  # noqa: E402
from chorus.patterns.agreement import extractor  # noqa: E402
from chorus.routing.predictor import Neighbours, OutcomePredictor  # noqa: E402

HERE = Path(__file__).resolve().parent


def split(rows: list[Any], sample: int, seed: int = 0) -> tuple[list[Any], list[Any]]:
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    rows = rows[:sample]
    half = len(rows) // 2
    return rows[half:], rows[:half]


def systems_yaml(table: Path, models: list[str], ranked: list[str], cheap_pair: list[str],
                 routers: dict[str, tuple[Path, list[str]]], share: float,
                 weighted: VotePlan) -> str:
    best = ranked[0]
    doc: dict[str, Any] = {
        "models": {m: {"provider": "replay", "outcomes": str(table), "model": m}
                   for m in models},
        "systems": {
            "vote_top3": {"kind": "vote", "models": ranked[:3], "extract": "choice",
                          "tie_break": "order"},
            "vote_weighted": vote_system(weighted, extract="choice"),
            "consensus": {"kind": "consensus", "models": ranked[1:3], "threshold": 1.0,
                          "extract": "choice", "escalate_to": best},
            "cascade": {"kind": "cascade", "stages": [
                {"model": {"kind": "vote", "models": cheap_pair, "extract": "choice"},
                 "check": {"type": "function", "function": "_checks:unanimous",
                           "threshold": 1.0}},
                {"model": best}]},
        },
    }
    for name, (path, pool) in routers.items():
        doc["systems"][name] = {
            "kind": "router", "classifier": {"type": "learned", "path": str(path),
                                             "cost_share": share},
            "routes": {m: m for m in pool}, "default": best}
    return yaml.safe_dump(doc, sort_keys=False, width=100)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(HERE.parents[1] / "shared" / "data"))
    parser.add_argument("--sample", type=int, default=4000)
    parser.add_argument("--share", type=float, default=0.5,
                        help="routers: the calibrated setting spending at most this share of "
                             "the costliest model (default 0.5)")
    parser.add_argument("--out", default=str(HERE / "results" / "mmlu_pro.json"))
    args = parser.parse_args()
    started = time.time()
    cache = Path(os.environ.get("CHORUS_BENCH_CACHE") or embedding_cache())
    work = cache / "mmlu_pro"
    work.mkdir(parents=True, exist_ok=True)

    rows = mmlu_pro_outcomes(Path(args.data) / "mmlu_pro")
    train, test = split(rows, args.sample)
    models = models_of(rows)
    s_tr, c_tr = matrices(train, models)
    acc = np.nanmean(np.nan_to_num(s_tr, nan=0.0), axis=0)
    mean_cost = np.nanmean(c_tr, axis=0)
    ranked = [models[j] for j in np.argsort(-acc, kind="stable")]
    top5 = ranked[:5]
    # The cascade's first stage: the two cheapest of the five best models on train.
    cheap_pair = sorted(top5, key=lambda m: mean_cost[models.index(m)])[:2]
    # The weighted majority: log-odds weights and its size, both from the train half.
    weighted = plan_vote(train, extract=extractor("choice"))

    embedder = MiniLMEmbedder()
    x_train = await embed_rows(train, embedder, cache)
    x_test = await embed_rows(test, embedder, cache)
    routers: dict[str, tuple[Path, list[str]]] = {}
    for name, pool in (("router_knn_29", models), ("router_knn_top5", top5)):
        router = fit_router(train, x_train, kind="knn", models=pool, seed=0)
        routers[name] = (router.save(work / name), pool)

    table = work / "test.jsonl"
    write_outcomes(table, test)
    cfg_path = work / "systems.yaml"
    cfg_path.write_text(systems_yaml(table, models, ranked, cheap_pair, routers, args.share,
                                     weighted), "utf-8")
    cfg = Config.load(cfg_path)
    # The routers embed each request with MiniLM; give the shared embedder the cached
    # vectors of these very prompts (same model) so the run does not embed them again.
    shared = cfg.builder.embedder("minilm")
    for row, vec in zip(test, x_test, strict=True):
        shared._memo[row.prompt] = vec
    names = [ranked[0], ranked[1], "vote_top3", "vote_weighted", "consensus", "cascade",
             *routers]
    systems = {n: cfg.get(n) for n in names}
    items = as_items(test)
    t0 = time.time()
    results = await run_bench(systems, items, make_scorer("choice"), concurrency=8)
    run_s = time.time() - t0
    summaries = [report.summarise(n, system_kind(systems[n]), results[n]) for n in names]
    best = summaries[0]
    escalated = {
        "consensus": sum(r.calls > 2 for r in results["consensus"]) / len(items),
        "cascade": sum(r.calls > 2 for r in results["cascade"]) / len(items)}
    routed: dict[str, dict[str, int]] = {}
    for n in routers:
        counts: dict[str, int] = {}
        for r in results[n]:
            counts[r.model or "?"] = counts.get(r.model or "?", 0) + 1
        routed[n] = dict(sorted(counts.items(), key=lambda kv: -kv[1])[:4])

    cmd = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    print(f"Command: `{cmd}`  \nMachine: {machine()}  \nTotal time: "
          f"{time.time() - started:.0f} s (bench run {run_s:.0f} s)\n")
    print(f"Train/test: {len(train)}/{len(test)} questions. Ranked on train: "
          f"{', '.join(f'{m} {acc[models.index(m)]:.3f}' for m in ranked[:5])}. "
          f"Cascade pair: {', '.join(cheap_pair)}.\n")
    print(f"Weighted vote planned on train: {len(weighted.models)} models, weights "
          f"{', '.join(f'{m} {w:.2f}' for m, w in weighted.weights.items())}; replayed train "
          f"accuracy by size: "
          f"{', '.join(f'{k}: {q:.3f}' for k, q in weighted.quality_by_size.items())}.\n")
    print("| system | kind | accuracy | 95 % CI | cost $ (2,000 q) | cost vs best single | "
          "calls/item | errors |")
    print("|---|---|---|---|---|---|---|---|")
    rows_out = []
    for s in summaries:
        rel = s.cost_usd / best.cost_usd if best.cost_usd else float("nan")
        rows_out.append({**{k: getattr(s, k) for k in s.__dataclass_fields__},
                         "cost_vs_best": rel})
        print(f"| {s.system} | {s.kind} | {s.quality:.3f} | {s.quality_low:.3f}-"
              f"{s.quality_high:.3f} | {s.cost_usd:.3f} | {rel:.0%} | "
              f"{s.calls_per_item:.2f} | {s.errors} |")
    above = [s.system for s in summaries if s.quality > 0.72]
    half = [s.system for s in summaries if s.system in routers
            and s.quality >= best.quality - 1e-9 and s.cost_usd <= best.cost_usd / 2]
    print(f"\nEscalated: consensus {escalated['consensus']:.0%}, cascade "
          f"{escalated['cascade']:.0%}. Routers' most used models: {routed}")
    print(f"Goal 'some system above 0.72': {'met by ' + ', '.join(above) if above else 'not met'}."
          f" Goal 'a router at {best.system}'s accuracy for at most half its cost': "
          f"{'met by ' + ', '.join(half) if half else 'not met'}.")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({
        "command": cmd, "machine": machine(), "train": len(train), "test": len(test),
        "ranked_on_train": {m: float(acc[models.index(m)]) for m in ranked},
        "cascade_pair": cheap_pair, "router_cost_share": args.share,
        "weighted_vote": {"models": weighted.models, "weights": weighted.weights,
                          "train_quality_by_size": weighted.quality_by_size},
        "router_k": {n: s.k if isinstance(s := OutcomePredictor.load(p).scorer, Neighbours)
                     else None for n, (p, _) in routers.items()},
        "escalated": escalated, "routed": routed, "prices": PRICES_NOTE,
        "goal_above_072": above, "goal_router_half_cost": half,
        "systems_yaml": str(cfg_path),
        "results": rows_out}, indent=2) + "\n", "utf-8")


if __name__ == "__main__":
    asyncio.run(main())
