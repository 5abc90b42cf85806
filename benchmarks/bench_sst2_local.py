"""SST-2 on the two bundled local models, real inference: single vs vote vs consensus vs
cascade, each built from benchmarks/configs/sst2_local.yaml and run by chorus's bench
runner (``chorus.eval.bench.run_bench``, the code behind ``chorus bench``).

- Items: a fixed-seed sample (seed 0) of ``--items`` sentences of stsa.binary.test
  (1,821 in all; 200 by default to keep the run near 15 minutes on 2 busy cores).
- Scorer: the first "positive"/"negative" in the answer vs the label (regex scorer).
- The cascade's log-probability threshold is calibrated first on a fixed-seed sample of
  ``--calib`` dev sentences: the threshold (among the dev log-probabilities) with the best
  dev accuracy of "Gemma, else SmolLM2", fewest escalations on ties.
- Concurrency 1, so "time per item" is one item's wall time with nothing beside it.

    .venv/bin/python benchmarks/bench_sst2_local.py [--items 200] [--calib 60]
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
from _machine import machine  # noqa: E402

from chorus.config import Config  # noqa: E402
from chorus.core.types import Request  # noqa: E402
from chorus.eval import report  # noqa: E402
from chorus.eval.bench import Progress, run_bench, system_kind  # noqa: E402
from chorus.eval.datasets import Item  # noqa: E402
from chorus.eval.scorers import make_scorer  # noqa: E402

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "configs" / "sst2_local.yaml"
SYSTEMS = ["smollm2", "gemma3", "vote", "consensus", "cascade"]


def sample(path: Path, n: int, seed: int = 0) -> list[Item]:
    lines = [ln for ln in path.read_text("utf-8").splitlines() if ln.strip()]
    picked = sorted(random.Random(seed).sample(range(len(lines)), min(n, len(lines))))
    items = []
    for i in picked:
        label, sentence = lines[i].split(" ", 1)
        items.append(Item(f"{path.name}-{i}", f"Review: {sentence}",
                          "positive" if label == "1" else "negative"))
    return items


def calibrate(logprobs: list[float], gemma_ok: list[bool], smol_ok: list[bool]
              ) -> tuple[float, float, float]:
    """The threshold t (accept Gemma when its logprob >= t) with the best accuracy, fewest
    escalations on ties; returns (t, accuracy, escalated share)."""
    best: tuple[float, float, float] | None = None
    for t in sorted({*logprobs, 0.0}):
        ok = [g if lp >= t else s for lp, g, s in zip(logprobs, gemma_ok, smol_ok, strict=True)]
        acc = sum(ok) / len(ok)
        esc = sum(lp < t for lp in logprobs) / len(logprobs)
        if best is None or (acc, -esc) > (best[1], -best[2]):
            best = (t, acc, esc)
    assert best is not None
    return best


async def run_calibration(items: list[Item]) -> dict[str, Any]:
    cfg = Config.load(CONFIG)
    gemma, smol = cfg.get("gemma3"), cfg.get("smollm2")
    lps, g_ok, s_ok = [], [], []
    for it in items:
        g = await gemma.complete(Request.of(it.prompt))
        s = await smol.complete(Request.of(it.prompt))
        lps.append(g.logprob if g.logprob is not None else -99.0)
        g_ok.append(it.reference in g.text.lower())
        s_ok.append(it.reference in s.text.lower())
    t, acc, esc = calibrate(lps, g_ok, s_ok)
    return {"items": len(items), "threshold": t, "dev_accuracy": acc, "dev_escalated": esc,
            "dev_gemma": sum(g_ok) / len(g_ok), "dev_smollm2": sum(s_ok) / len(s_ok)}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(HERE.parents[1] / "shared" / "data" / "sst2"))
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--calib", type=int, default=60)
    parser.add_argument("--out", default=str(HERE / "results" / "sst2_local.json"))
    args = parser.parse_args()
    data = Path(args.data)
    started = time.time()
    calib = await run_calibration(sample(data / "stsa.binary.dev", args.calib))
    os.environ["CASCADE_LOGPROB"] = repr(calib["threshold"])
    print(f"calibration: {calib}", file=sys.stderr)

    items = sample(data / "stsa.binary.test", args.items)
    cfg = Config.load(CONFIG)
    systems = {n: cfg.get(n) for n in SYSTEMS}
    scorer = make_scorer(r"regex:\b(positive|negative)\b")
    results = await run_bench(systems, items, scorer, concurrency=1,
                              progress=Progress(len(items) * len(systems), every_s=30))
    summaries = [report.summarise(n, system_kind(systems[n]), results[n]) for n in SYSTEMS]
    # Consensus asks both Gemma prompts first, the cascade Gemma once: more is escalation.
    escalated = {n: sum(r.calls > base for r in results[n]) / len(items)
                 for n, base in (("consensus", 2), ("cascade", 1))}
    total = time.time() - started
    cmd = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    print(f"Command: `{cmd}`  \nMachine: {machine()}  \nTotal time: {total:.0f} s "
          f"(including the {calib['items']}-item dev calibration)\n")
    print("| system | kind | accuracy | 95 % CI | time/item p50 s | p95 s | mean s | "
          "calls/item | errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    for s in summaries:
        mean_s = sum(r.latency_s for r in results[s.system]) / len(items)
        rows.append({**{k: getattr(s, k) for k in s.__dataclass_fields__}, "mean_s": mean_s})
        print(f"| {s.system} | {s.kind} | {s.quality:.3f} | {s.quality_low:.3f}-"
              f"{s.quality_high:.3f} | {s.latency_p50_s:.2f} | {s.latency_p95_s:.2f} | "
              f"{mean_s:.2f} | {s.calls_per_item:.2f} | {s.errors} |")
    print(f"\nCascade threshold {calib['threshold']:.3f} (dev: Gemma {calib['dev_gemma']:.3f}, "
          f"SmolLM2 {calib['dev_smollm2']:.3f}, cascade {calib['dev_accuracy']:.3f}); "
          f"escalated on test: consensus {escalated['consensus']:.0%}, "
          f"cascade {escalated['cascade']:.0%}.")
    best, why = report.recommend(summaries, 0.01)
    print(f"Recommended: {why}")
    for m in systems.values():
        await m.aclose()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({
        "command": cmd, "machine": machine(), "total_s": round(total, 1),
        "items": len(items), "calibration": calib, "escalated": escalated,
        "recommended": best, "results": rows}, indent=2) + "\n", "utf-8")


if __name__ == "__main__":
    asyncio.run(main())
