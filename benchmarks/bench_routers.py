"""Learned routers (knn, mlp, mf) vs a random router on recorded outcomes.

Data (from ../shared/data, never copied here):
- RouteLLM GSM8K: Mixtral-8x7B-Instruct vs GPT-4-1106-preview, contaminated prompts
  excluded, all 1,307 remaining items, split 50/50 at random (seed 0) into train / test.
- RouteLLM MMLU: the same two models, 14,037 items after exclusion, a random sample of
  3,000 (seed 0) split 50/50.
- MMLU-Pro: gemini-1.5-pro-002, Meta-Llama-3.1-70B-Instruct and gemini-1.5-flash-002,
  a random sample of 4,000 of the 12,032 questions (seed 0) split 50/50.

On RouteLLM GSM8K, whose table records the weak model's whole answers, a cascade runs
beside the routers: the weak model always, then the strong one when a learned acceptance
check (chorus.routing.acceptance, the check `chorus tune` fits and a cascade runs live)
doubts the weak answer. The check reads the prompt's embedding and the answer's shape
(length, stated final answer, whether its worked arithmetic holds); whether the prompt's
embedding helps is decided on a held-out fifth of train. Its curve sweeps the check's
threshold and pays for the weak call on every item.

Prompts are embedded with the local MiniLM (cached in $CHORUS_BENCH_CACHE, default
~/.cache/chorus/embeddings as for chorus router fit). Each router is fitted on the train
half (20 % of it held out to calibrate the cost knob) and evaluated on the test half.
Costs are estimated from list prices (see chorus/eval/convert.py). Each router is also
measured as RouteLLM measures one, in calls: the cost is the share of items sent to the
strong model, the weak model's calls free ("in calls" columns).

    .venv/bin/python benchmarks/bench_routers.py [--data ../shared/data]

With ``--more-data`` it asks instead whether the learned routers reach RouteLLM's
published MMLU APGR (0.603) with more training items: the same RouteLLM MMLU test half,
the routers fitted on the 12,537 items outside it as well as on the 1,500 of the train
half, each kind at three seeds (the fit's holdout split and initialisation), and the mean
of each kind's predictions, and of all of them, as ensembles (results in
``results/routers_more_data.json``).
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
from chorus.eval import _replay as rp  # noqa: E402
from chorus.eval.convert import mmlu_pro_outcomes, routellm_outcomes  # noqa: E402
from chorus.eval.metrics import Point, RouterMetrics, router_metrics  # noqa: E402
from chorus.eval.outcomes import OutcomeItem, matrices  # noqa: E402
from chorus.eval.routers import (  # noqa: E402
    _scores_costs,
    embed_rows,
    embedding_cache,
    evaluate_router,
    fit_router,
    single_points,
)
from chorus.patterns.agreement import extractor  # noqa: E402
from chorus.routing.acceptance import AcceptanceModel  # noqa: E402
from chorus.routing.learned import sweep  # noqa: E402

MMLU_PRO_MODELS = ["gemini-1.5-pro-002", "Meta-Llama-3_1-70B-Instruct", "gemini-1.5-flash-002"]


def split(rows: list[OutcomeItem], sample: int | None, seed: int = 0
          ) -> tuple[list[OutcomeItem], list[OutcomeItem]]:
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    if sample is not None:
        rows = rows[:sample]
    half = len(rows) // 2
    return rows[half:], rows[:half]


def cascade_metrics(t: rp.Table, accept_p: np.ndarray, weak: int, strong: int,
                    calls: bool = False) -> RouterMetrics:
    """The cascade weak -> strong over every threshold of ``accept_p`` (escalate the
    least likely right first), against the two models alone; with ``calls``, its cost is
    the number of strong calls, as RouteLLM counts (the weak model's calls free)."""
    q, c = t.scores, t.costs
    if calls:
        c = np.zeros(q.shape)
        c[:, strong] = 1.0
    escalate = np.zeros(len(t), dtype=bool)
    points = []
    for i in [None, *np.argsort(accept_p, kind="stable")]:
        if i is not None:
            escalate[i] = True
        points.append(Point(float(c[:, weak].sum() + c[escalate, strong].sum()),
                            float(np.where(escalate, q[:, strong], q[:, weak]).mean())))
    singles = {t.models[j]: Point(float(c[:, j].sum()), float(q[:, j].mean())) for j in (0, 1)}
    return router_metrics(points, singles)


def learned_cascade(train: list[OutcomeItem], x_train: np.ndarray, test: list[OutcomeItem],
                    x_test: np.ndarray) -> tuple[str, RouterMetrics, RouterMetrics]:
    """The weak -> strong cascade with a learned acceptance check; with or without the
    prompt's embedding, whichever has the higher APGR on a held-out fifth of train."""
    models = sorted({m for r in train for m in r.outcomes})
    q, _ = matrices(train, models)
    strong = int(np.argmax(np.nanmean(q, axis=0)))
    weak = 1 - strong
    tr, te = (rp.Table.of(rows, models, extractor("number")) for rows in (train, test))
    f_tr, f_te = rp.stage_features(tr, [weak])[0], rp.stage_features(te, [weak])[0]

    def fit(idx: np.ndarray, prompt: bool) -> AcceptanceModel:
        x = x_train[idx] if prompt else np.zeros((len(idx), 0))
        return AcceptanceModel.fit(x, f_tr[idx], tr.scores[idx, weak] > 0.5, shape=True)

    def accept(model: AcceptanceModel, x: np.ndarray, feats: np.ndarray) -> np.ndarray:
        return model.predict(x if model.dims else np.zeros((len(feats), 0)), feats)

    cut = len(train) * 4 // 5
    fitting, held_out = np.arange(cut), np.arange(cut, len(train))
    held = {prompt: cascade_metrics(tr.take(held_out), accept(fit(fitting, prompt),
                                                               x_train[held_out],
                                                               f_tr[held_out]),
                                    weak, strong).apgr
            for prompt in (True, False)}
    prompt = held[True] >= held[False]
    model = fit(np.arange(len(train)), prompt)
    label = ("cascade, learned check on the answer"
             + (" and the prompt" if prompt else " alone")
             + f" (held-out APGR {held[True]:.3f} with the prompt, {held[False]:.3f} without)")
    p = accept(model, x_test, f_te)
    return label, cascade_metrics(te, p, weak, strong), cascade_metrics(te, p, weak, strong,
                                                                        calls=True)


def fmt(v: float | None) -> str:
    return "never" if v is None else f"{v:.3f}"


async def more_data(data: Path, cache: Path, embedder: MiniLMEmbedder) -> list[dict[str, Any]]:
    """RouteLLM MMLU APGR of each kind and seed, and of their mean predictions, fitted on
    the train half and on everything but the test half (see the module docstring)."""
    rows = list(routellm_outcomes(data / "routellm", "mmlu"))
    train_half, test = split(rows, 3000)
    random.Random(0).shuffle(rows)  # as split does: the test half is its first 1,500
    assert [r.id for r in rows[:len(test)]] == [r.id for r in test]
    train_all = rows[len(test):]
    x_test = np.asarray(await embed_rows(test, embedder, cache), float)
    results: list[dict[str, Any]] = []
    for label, train in (("train half", train_half), ("all but the test half", train_all)):
        x = np.asarray(await embed_rows(train, embedder, cache), float)
        preds: dict[str, list[np.ndarray]] = {}
        for kind in ("knn", "mlp", "mf"):
            for seed in (0, 1, 2) if kind != "knn" else (0,):  # knn's fit is not random
                router = fit_router(train, x, kind=kind, seed=seed)  # type: ignore[arg-type]
                preds.setdefault(kind, []).append(router.predict(x_test))
        rel = router.relative_costs()
        scores, costs = _scores_costs(test, router.models)
        singles = single_points(test, router.models)

        def apgr(pred: np.ndarray, rel: Any = rel, scores: Any = scores, costs: Any = costs,
                 singles: Any = singles) -> float:
            curve = [Point(c, q, k) for k, c, q in sweep(pred, rel, scores, costs)]
            return round(float(router_metrics(curve, singles).apgr), 3)

        row: dict[str, Any] = {"train": label, "items": len(train)}
        for kind, ps in preds.items():
            row[kind] = [apgr(p) for p in ps]
            row[f"{kind} mean of seeds"] = apgr(np.mean(ps, axis=0))
        row["knn + mlp + mf"] = apgr(np.mean([np.mean(ps, axis=0) for ps in preds.values()],
                                             axis=0))
        results.append(row)
        print(json.dumps(row), flush=True)
    return results


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared"
                                              / "data"))
    parser.add_argument("--out", help="where the results go (default: results/routers.json, "
                                      "or results/routers_more_data.json with --more-data)")
    parser.add_argument("--more-data", action="store_true",
                        help="RouteLLM MMLU routers fitted on more items (module docstring)")
    args = parser.parse_args()
    data = Path(args.data)
    cache = Path(os.environ.get("CHORUS_BENCH_CACHE") or embedding_cache())
    embedder = MiniLMEmbedder()
    cmd = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    results_dir = Path(__file__).resolve().parent / "results"
    if args.more_data:
        started = time.time()
        found = await more_data(data, cache, embedder)
        print(f"Command: `{cmd}`  \nMachine: {machine()}  \n"
              f"Total time: {time.time() - started:.0f} s")
        out = Path(args.out or results_dir / "routers_more_data.json")
        out.write_text(json.dumps({"command": cmd, "machine": machine(), "results": found},
                                  indent=2) + "\n", "utf-8")
        return
    sets = {
        "routellm-gsm8k": (routellm_outcomes(data / "routellm", "gsm8k"), None, None),
        "routellm-mmlu": (routellm_outcomes(data / "routellm", "mmlu"), 3000, None),
        "mmlu_pro-3": (mmlu_pro_outcomes(data / "mmlu_pro", models=MMLU_PRO_MODELS), 4000,
                       MMLU_PRO_MODELS),
    }
    results: list[dict[str, Any]] = []
    started = time.time()
    for name, (rows, sample, models) in sets.items():
        train, test = split(rows, sample)
        t0 = time.time()
        x_train = await embed_rows(train, embedder, cache)
        x_test = await embed_rows(test, embedder, cache)
        embed_s = time.time() - t0
        random_done = False
        # knn with k chosen on the held-out split (the default), and with k fixed at 20.
        for kind, k in (("knn", None), ("knn", 20), ("mlp", None), ("mf", None)):
            t1 = time.time()
            router = fit_router(train, x_train, kind=kind, models=models, seed=0,  # type: ignore[arg-type]
                                k=k)
            label = kind if kind != "knn" else (
                f"knn, k={getattr(router.scorer, 'k', None)}"
                + (" fixed" if k else " (held-out)"))
            fit_s = time.time() - t1
            ev = evaluate_router(router, test, x_test)
            m = ev.metrics
            if not random_done:
                r = ev.random
                results.append({"dataset": name, "router": "random", "train": len(train),
                                "test": len(test), "weak": m.weak, "strong": m.strong,
                                "apgr": r.apgr, "cpt50": r.cpt50, "cpt80": r.cpt80,
                                "aiq": r.aiq, "fit_s": 0.0,
                                "singles": {k: {"cost_usd": p.cost_usd, "quality": p.quality}
                                            for k, p in ev.singles.items()}})
                random_done = True
            d = ev.at_default
            results.append({"dataset": name, "router": label, "train": len(train),
                            "test": len(test), "weak": m.weak, "strong": m.strong,
                            "apgr": m.apgr, "cpt50": m.cpt50, "cpt80": m.cpt80, "aiq": m.aiq,
                            "apgr_calls": ev.calls.apgr, "cpt50_calls": ev.calls.cpt50,
                            "fit_s": round(fit_s, 2), "embed_s": round(embed_s, 1),
                            "default_knob": {"willingness_to_pay": d.knob,
                                             "quality": d.quality, "cost_usd": d.cost_usd}})
        if all(o.response for r in train[:50] for o in r.outcomes.values()) and not models:
            t1 = time.time()
            label, m, mc = learned_cascade(train, np.asarray(x_train), test,
                                           np.asarray(x_test))
            results.append({"dataset": name, "router": label, "train": len(train),
                            "test": len(test), "weak": m.weak, "strong": m.strong,
                            "apgr": m.apgr, "cpt50": m.cpt50, "cpt80": m.cpt80, "aiq": m.aiq,
                            "apgr_calls": mc.apgr, "cpt50_calls": mc.cpt50,
                            "fit_s": round(time.time() - t1, 2)})
    print(f"Command: `{cmd}`  \nMachine: {machine()}  \n"
          f"Total time: {time.time() - started:.0f} s\n")
    print("| data | router | train/test | APGR | CPT(50%) | CPT(80%) | AIQ | "
          "APGR / CPT(50%) in calls | quality / cost $ at calibrated knob |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        at = r.get("default_knob")
        knob = f"{at['quality']:.3f} / {at['cost_usd']:.3g}" if at else "-"
        by_calls = (f"{r['apgr_calls']:.3f} / {fmt(r['cpt50_calls'])}" if "apgr_calls" in r
                    else "-")
        print(f"| {r['dataset']} | {r['router']} | {r['train']}/{r['test']} | {r['apgr']:.3f} "
              f"| {fmt(r['cpt50'])} | {fmt(r['cpt80'])} | {r['aiq']:.4f} | {by_calls} "
              f"| {knob} |")
    print()
    for r in results:
        if r["router"] == "random":
            singles = ", ".join(f"{k} {v['quality']:.3f} (${v['cost_usd']:.3g})"
                                for k, v in r["singles"].items())
            print(f"- {r['dataset']} test singles: {singles}; weak {r['weak']}, "
                  f"strong {r['strong']}")
    out = Path(args.out or results_dir / "routers.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": cmd, "machine": machine(), "results": results},
                              indent=2) + "\n", "utf-8")


if __name__ == "__main__":
    asyncio.run(main())
