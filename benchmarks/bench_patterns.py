"""Overhead of each pattern node over zero-latency scripted children, in µs.

    .venv/bin/python benchmarks/bench_patterns.py [--calls 2000] [--rounds 5]

Each system is built from YAML (the same objects as the Python API) over ScriptedModel
leaves that answer at once. For each pattern: the median time of one request through
it, the number of leaf calls it made (counted in its trace), and the time of that many
direct leaf calls measured in the same run; overhead = pattern - leaf calls. Rounds
are interleaved so that load on a shared machine hits every row alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

from chorus import Config, Request, call  # noqa: E402
from chorus.core.types import Span  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PLAN = '{"steps": [{"id": "s1", "type": "default", "prompt": "look it up", "depends_on": []}]}'
YAML = f"""
models:
  a: {{provider: scripted, default: positive}}
  b: {{provider: scripted, default: positive}}
  c: {{provider: scripted, default: negative}}
  judge: {{provider: scripted, default: '{{"score": 8}}'}}
  boss:
    provider: scripted
    rules:
      'Plan:': '{PLAN}'
    default: the final answer
  sup:
    provider: scripted
    rules:
      'review|approve': '{{"approved": true, "feedback": "ok"}}'
      'assign|worker': '{{"assignments": [{{"worker": "w", "task": "do it"}}]}}'
    default: '{{"approved": true, "feedback": "ok"}}'
systems:
  router: {{kind: router, classifier: {{type: keyword, rules: [{{label: film, keywords: [film]}}]}},
           routes: {{film: a, general: b}}, default: general}}
  pipeline: {{kind: pipeline, steps: [{{model: a, prompt: "{{input}}"}},
                                      {{model: b, prompt: "{{previous}}"}}]}}
  fanout: {{kind: fanout, models: [a, b, c]}}
  vote: {{kind: vote, models: [a, b, c], extract: label, labels: [positive, negative]}}
  consensus: {{kind: consensus, models: [a, b], escalate_to: c}}
  weighted: {{kind: weighted, models: [a, c], judge: judge}}
  cascade: {{kind: cascade, stages: [{{model: a, check: {{type: agreement, samples: 2,
             threshold: 0.5}}}}, {{model: c}}]}}
  fallback: {{kind: fallback, models: [a, b]}}
  planner: {{kind: planner, planner: boss, executors: {{default: a}}}}
  supervisor: {{kind: supervisor, supervisor: sup, workers: {{w: a}}, max_rounds: 1}}
"""


def leaf_calls(span: Span) -> int:
    return sum(1 for s in span.walk() if s.kind == "model")


async def timed(fn, calls: int) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    for _ in range(calls):
        await fn()
    return (time.perf_counter() - t) / calls * 1e6


async def run(calls: int, rounds: int) -> dict[str, dict[str, float]]:
    cfg = Config.from_text(YAML, "bench_patterns.yaml")
    request = Request.of("Is the sentence 'I loved this film' positive or negative?")
    leaf = cfg.get("a")
    systems = {name: cfg.get(name) for name in cfg.system_names}
    counts = {}
    for name, model in systems.items():
        c = await call(model, request)
        assert c.trace is not None
        counts[name] = leaf_calls(c.trace)
    samples: dict[str, list[float]] = {name: [] for name in ["leaf", *systems]}
    for _ in range(rounds):
        samples["leaf"].append(await timed(lambda: call(leaf, request), calls))
        for name, model in systems.items():
            samples[name].append(await timed(lambda m=model: call(m, request), calls // 4))
    leaf_us = statistics.median(samples["leaf"])
    out = {}
    for name in systems:
        total = statistics.median(samples[name])
        out[name] = {"total_us": total, "leaf_calls": counts[name],
                     "overhead_us": total - counts[name] * leaf_us}
    out["leaf"] = {"total_us": leaf_us, "leaf_calls": 1, "overhead_us": 0.0}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", default=str(ROOT / "benchmarks/results/patterns.json"))
    args = ap.parse_args()
    res = asyncio.run(run(args.calls, args.rounds))
    print(f"machine: {machine()}")
    print(f"command: {' '.join(sys.argv)}")
    print()
    print("| pattern node | leaf calls | µs per request | leaf calls' µs | overhead µs |")
    print("|---|---|---|---|---|")
    leaf_us = res["leaf"]["total_us"]
    for name, r in res.items():
        if name == "leaf":
            continue
        print(f"| {name} | {r['leaf_calls']:.0f} | {r['total_us']:.1f} | "
              f"{r['leaf_calls'] * leaf_us:.1f} | {r['overhead_us']:.1f} |")
    print(f"\none direct leaf call: {leaf_us:.1f} µs")
    Path(args.json).write_text(json.dumps({"machine": machine(), "results": res}, indent=2))


if __name__ == "__main__":
    main()
