"""Guardrails: PII detector quality, latency added by the cheap checks and by a classifier
on the local model, and concurrency of independent checks.

    .venv/bin/python benchmarks/bench_guardrails.py [--per-type 200] [--runs 500]
                                                    [--classifier-runs 3]

(1) precision and recall per entity type on the seeded set of benchmarks/pii_testset.py
(positives plus look-alike near-misses); a hit counts when its label matches and it
overlaps the gold span. (2) false positives on ordinary text: the share of SST-2
sentences (/work/shared/data/sst2/stsa.binary.{dev,test}, read in place) with any
detection. (3) the latency the default ``safe`` checks (size, shape, injection, PII
redaction in; PII and refusal out) add to a 2,000-character prompt over an instant inner
model, and that of an injection classifier on smollm2-135m (provider local, max_tokens
24). (4) five checks sleeping 50..250 ms: wall time against their sum.
Writes benchmarks/results/guardrails.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402
from pii_testset import generate  # noqa: E402

from chorus.config.builder import Config  # noqa: E402
from chorus.core.types import Params, Request  # noqa: E402
from chorus.policies.guardrails import Check, Finding, Guardrails  # noqa: E402
from chorus.policies.guardrails._checks import EMBEDDING, Subject  # noqa: E402
from chorus.policies.guardrails.injection import InjectionClassifier  # noqa: E402
from chorus.policies.guardrails.pii import ENTITIES, find_pii  # noqa: E402
from chorus.providers.scripted import ScriptedModel  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SST2 = Path("/work/shared/data/sst2")


def pii_quality(per_type: int, seed: int) -> dict[str, Any]:
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    samples = generate(per_type, seed)
    for s in samples:
        matched = False
        for h in find_pii(s.text):
            if h.label == s.label and h.start < s.end and s.start < h.end:
                tp[h.label] += 1
                matched = True
            else:
                fp[h.label] += 1
        if s.label and not matched:
            fn[s.label] += 1
    rows = {}
    for label in ENTITIES:
        p = tp[label] / (tp[label] + fp[label]) if tp[label] + fp[label] else 1.0
        r = tp[label] / (tp[label] + fn[label]) if tp[label] + fn[label] else 1.0
        rows[label] = {"precision": round(p, 4), "recall": round(r, 4), "tp": tp[label],
                       "fp": fp[label], "fn": fn[label]}
    return {"samples": len(samples), "per_type": per_type, "seed": seed, "by_type": rows}


def sst2_false_positives() -> dict[str, Any]:
    sentences = []
    for name in ("stsa.binary.dev", "stsa.binary.test"):
        with open(SST2 / name, encoding="utf-8") as f:
            sentences += [line.split(" ", 1)[1].strip() for line in f if " " in line]
    flagged: Counter[str] = Counter()
    any_hit = 0
    for s in sentences:
        hits = find_pii(s)
        any_hit += bool(hits)
        flagged.update({h.label for h in hits})
    return {"sentences": len(sentences), "with_any_detection": any_hit,
            "rate": round(any_hit / len(sentences), 5), "by_type": dict(flagged)}


def prompt_2000() -> str:
    base = ("Our quarterly review covers shipping delays, the new onboarding flow and "
            "customer feedback from the spring survey. Reach the team lead at "
            "ops.lead@example.com or +44 20 7946 0958 with questions. ")
    return (base * 20)[:2000]


def ordinary_2000() -> str:
    """2,000 characters of ordinary text with no PII: SST-2 dev sentences, in order."""
    with open(SST2 / "stsa.binary.dev", encoding="utf-8") as f:
        text = " ".join(line.split(" ", 1)[1].strip() for line in f if " " in line)
    return text[:2000]


async def cheap_latency(runs: int, prompt: str | None = None) -> dict[str, Any]:
    safe = Config.default().get("safe")
    assert isinstance(safe, Guardrails)
    inner = ScriptedModel("instant", default="Thanks, noted: shipping delays are down.")
    g = Guardrails("safe", inner, input=safe.input, output=safe.output)
    req = Request.of(prompt if prompt is not None else prompt_2000())
    for _ in range(20):  # warm up
        await g.complete(req)
        await inner.complete(req)
    added: list[float] = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await inner.complete(req)
        t1 = time.perf_counter()
        await g.complete(req)
        t2 = time.perf_counter()
        added.append(((t2 - t1) - (t1 - t0)) * 1000)
    added.sort()
    return {"checks": [f"{c.stage}:{c.name}/{c.action}" for c in (*g.input, *g.output)],
            "prompt_chars": len(req.prompt), "runs": runs,
            "pii_items": len(find_pii(req.prompt)),
            "p50_ms": round(statistics.median(added), 4),
            "p95_ms": round(added[int(0.95 * (len(added) - 1))], 4)}


async def classifier_latency(runs: int) -> dict[str, Any]:
    from chorus.providers.local import LocalModel

    local = LocalModel("smollm2", "smollm2-135m",
                       params=Params(temperature=0, max_tokens=24, seed=0))
    ok, why = local.usable()
    if not ok:
        return {"skipped": why}
    local.load()
    g = Guardrails("g", ScriptedModel("instant", default="ok"),
                   input=[InjectionClassifier("clf", local, action="flag")])
    req = Request.of(prompt_2000())
    times, verdicts, tokens = [], [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        answer = await g.complete(req)
        times.append((time.perf_counter() - t0) * 1000)
        assert answer.trace is not None
        entry = answer.trace.attributes["checks"][0]
        verdicts.append([entry.get("injection"), entry.get("confidence")])
        tokens = answer.usage.input_tokens
    return {"model": "smollm2-135m (local, llama.cpp)", "runs": runs,
            "p50_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1),
            "classifier_prompt_tokens": tokens, "verdicts": verdicts}


class Sleep(Check):
    tier = EMBEDDING

    def __init__(self, name: str, delay: float) -> None:
        super().__init__(name)
        self.delay = delay

    async def run(self, subject: Subject) -> Finding | None:
        await asyncio.sleep(self.delay)
        return None


async def concurrency() -> dict[str, Any]:
    delays = [0.05, 0.10, 0.15, 0.20, 0.25]
    g = Guardrails("g", ScriptedModel("instant", default="ok"),
                   input=[Sleep(f"c{i}", d) for i, d in enumerate(delays)])
    walls = []
    for _ in range(5):
        t0 = time.perf_counter()
        await g.complete(Request.of("hi"))
        walls.append(time.perf_counter() - t0)
    return {"delays_ms": [d * 1000 for d in delays], "sum_ms": round(sum(delays) * 1000),
            "slowest_ms": round(max(delays) * 1000),
            "wall_p50_ms": round(statistics.median(walls) * 1000, 1)}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "command": "benchmarks/bench_guardrails.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "pii": pii_quality(args.per_type, args.seed),
        "sst2": sst2_false_positives(),
        "cheap_latency": await cheap_latency(args.runs),
        "cheap_latency_ordinary": await cheap_latency(args.runs, ordinary_2000()),
        "classifier_latency": await classifier_latency(args.classifier_runs),
        "concurrency": await concurrency(),
    }


def table(r: dict[str, Any]) -> str:
    lines = [f"`{r['command'].strip()}` on {r['machine']}", "",
             "| entity | precision | recall | tp | fp | fn |", "|---|---|---|---|---|---|"]
    for label, row in r["pii"]["by_type"].items():
        lines.append(f"| {label} | {row['precision']:.3f} | {row['recall']:.3f} | {row['tp']} "
                     f"| {row['fp']} | {row['fn']} |")
    s, c, k, q = r["sst2"], r["cheap_latency"], r["classifier_latency"], r["concurrency"]
    o = r["cheap_latency_ordinary"]
    lines += ["", "| measure | value |", "|---|---|",
              f"| PII test set | {r['pii']['samples']} sentences (seed {r['pii']['seed']}) |",
              f"| SST-2 dev+test sentences with any PII detection | {s['with_any_detection']}"
              f" / {s['sentences']} ({s['rate']:.2%}) {s['by_type'] or ''} |",
              f"| cheap checks added, 2,000-char prompt with {c['pii_items']} PII items (redacted) "
              f", p50 / p95 | {c['p50_ms']:.3f} ms / {c['p95_ms']:.3f} ms ({c['runs']} runs) |",
              f"| cheap checks added, 2,000 chars of ordinary text (SST-2 dev, no PII), p50 / p95 "
              f"| {o['p50_ms']:.3f} ms / {o['p95_ms']:.3f} ms ({o['runs']} runs) |"]
    if "skipped" in k:
        lines.append(f"| classifier on smollm2-135m | skipped: {k['skipped']} |")
    else:
        lines.append(f"| injection classifier on smollm2-135m, 2,000-char prompt, p50 | "
                     f"{k['p50_ms']:.0f} ms ({k['runs']} runs, "
                     f"{k['classifier_prompt_tokens']} prompt tokens) |")
    lines.append(f"| five checks of 50..250 ms (sum {q['sum_ms']} ms), wall p50 | "
                 f"{q['wall_p50_ms']} ms |")
    return "\n".join(lines)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-type", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--classifier-runs", type=int, default=3)
    result = asyncio.run(main(ap.parse_args()))
    out = ROOT / "benchmarks" / "results" / "guardrails.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(table(result))
