"""Fan-out wall time: (a) 8 scripted children with latencies 50..400 ms, wall time against
the slowest child; (b) the two bundled local models in a fan-out against the same two
calls one after the other (same prompts, interleaved repetitions, medians).

    .venv/bin/python benchmarks/bench_fanout.py [--reps 3] [--max-tokens 32] [--threads N]
                                                [--no-local]

Part (b) needs the ``local`` extra; both local models are loaded and called once before
timing so that load time is not measured. Local models are CPU-bound: two of them at once
only gain when the cores are free for both (``--threads`` sets each model's llama.cpp
threads; the default is the provider's).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

from chorus import Config, Request, ScriptedModel  # noqa: E402
from chorus.core.model import Model  # noqa: E402
from chorus.patterns.fanout import FanOut  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# Story openers, and Gemma as a plain completion model (no one-line template, no stop at
# a newline), so both models generate for a while: with one-word answers the run would
# time prompt processing and model asymmetry rather than concurrency.
PROMPTS = [
    "Once upon a time, in a land far away, there lived",
    "The old lighthouse keeper looked at the sea and",
    "It was the first day of spring, and the children",
]
LOCAL_YAML = """
models:
  smollm2: {provider: local, model: smollm2-135m, params: {temperature: 0, seed: 0}THREADS}
  gemma3: {provider: local, model: gemma3-270m, mode: completion, prompt_template: "{prompt}",
           stop: [], params: {temperature: 0, seed: 0}THREADS}
"""


async def scripted(reps: int) -> dict[str, Any]:
    latencies = [0.05 * (i + 1) for i in range(8)]
    kids: list[Model] = [ScriptedModel(f"m{i}", default="x", latency_s=s)
                         for i, s in enumerate(latencies)]
    fan = FanOut("fan", kids)
    request = Request.of("q")
    walls = []
    for _ in range(reps):
        t = time.perf_counter()
        await fan.complete(request)
        walls.append(time.perf_counter() - t)
    wall = statistics.median(walls)
    return {"latencies_s": latencies, "slowest_s": max(latencies), "sum_s": sum(latencies),
            "wall_s": walls, "median_wall_s": wall, "ratio_to_slowest": wall / max(latencies)}


async def local(reps: int, max_tokens: int, threads: int | None) -> dict[str, Any]:
    extra = f", n_threads: {threads}" if threads else ""
    config = Config.from_text(LOCAL_YAML.replace("THREADS", extra), "<bench_fanout>")
    a, b = config.get("smollm2"), config.get("gemma3")
    fan = FanOut("fan", [a, b])
    requests = [Request.of(p, max_tokens=max_tokens) for p in PROMPTS]
    for m in (a, b):  # load both models outside the timing
        await m.complete(requests[0])

    alone: dict[str, list[float]] = {"smollm2": [], "gemma3": []}

    async def one_after_the_other(r: Request) -> None:
        for m in (a, b):
            t = time.perf_counter()
            await m.complete(r)
            alone[m.name].append(time.perf_counter() - t)

    runs: dict[str, list[float]] = {"fanout": [], "sequential": []}
    tokens: dict[str, list[int]] = {"smollm2": [], "gemma3": []}
    for rep in range(reps):
        for r in requests:
            # Alternate which arm goes first so drift on a shared machine hits both alike.
            arms = ["fanout", "sequential"] if rep % 2 == 0 else ["sequential", "fanout"]
            for arm in arms:
                t = time.perf_counter()
                if arm == "fanout":
                    out = await fan.complete(r)
                    assert out.trace is not None
                    for span in out.trace.children:
                        tokens[span.name].append(span.usage.output_tokens)
                else:
                    await one_after_the_other(r)
                runs[arm].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in runs.items()}
    # The best a fan-out can do is the slower of the two, request by request.
    slower = [max(x, y) for x, y in zip(alone["smollm2"], alone["gemma3"], strict=True)]
    med["slower_alone"] = statistics.median(slower)
    return {"prompts": PROMPTS, "max_tokens": max_tokens, "reps": reps, "threads": threads,
            "raw_s": runs, "alone_s": alone,
            "median_s": med, "speedup": med["sequential"] / med["fanout"],
            "ratio_to_slower": med["fanout"] / med["slower_alone"],
            "median_output_tokens": {k: statistics.median(v) for k, v in tokens.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--scripted-reps", type=int, default=20)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None, help="llama.cpp threads per model")
    ap.add_argument("--no-local", action="store_true")
    ap.add_argument("--json", default=str(ROOT / "benchmarks/results/fanout.json"))
    args = ap.parse_args()

    a = asyncio.run(scripted(args.scripted_reps))
    b = None if args.no_local else asyncio.run(local(args.reps, args.max_tokens, args.threads))

    print(f"machine: {machine()}")
    print(f"command: {' '.join(sys.argv)}")
    print()
    print("| case | wall time (median) | reference | ratio |")
    print("|---|---|---|---|")
    print(f"| (a) fan-out of 8 scripted models, 50..400 ms ({args.scripted_reps} runs) "
          f"| {a['median_wall_s'] * 1000:.1f} ms | slowest child 400 ms (sum 1800 ms) "
          f"| {a['ratio_to_slowest']:.3f}x the slowest |")
    if b is not None:
        n = len(b["raw_s"]["fanout"])
        threads = f", {args.threads} thread(s) each" if args.threads else ""
        print(f"| (b) smollm2-135m + gemma3-270m, fan-out ({n} runs, max_tokens "
              f"{args.max_tokens}{threads}) | {b['median_s']['fanout']:.2f} s "
              f"| one after the other: {b['median_s']['sequential']:.2f} s; the slower "
              f"model alone: {b['median_s']['slower_alone']:.2f} s "
              f"| {b['median_s']['fanout'] / b['median_s']['sequential']:.2f}x the sum, "
              f"{b['ratio_to_slower']:.2f}x the slower |")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"machine": machine(), "command": " ".join(sys.argv),
                                           "scripted": a, "local": b}, indent=2))


if __name__ == "__main__":
    main()
