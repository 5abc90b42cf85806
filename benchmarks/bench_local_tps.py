"""Generation speed of the bundled local models through chorus, beside llama-cpp-python
called directly on the same loaded Llama object with the same settings.

    .venv/bin/python benchmarks/bench_local_tps.py [--runs 5] [--max-tokens 128]

chorus: ``await model.complete(request)`` (worker thread, prompt building, the
generation loop, usage and the Completion with its span), timed around the await.
Direct: ``create_chat_completion`` (SmolLM2, with the system message chorus adds for
it) or ``create_completion`` (Gemma, a stop-free continuation). Temperature 0, a fixed
seed; runs interleave direct, chorus, direct, chorus ... after one warm-up each.
tok/s = output tokens / wall time of the call (prompt evaluation included, for both).
On a shared machine wall time swings with the neighbours' load, so the CPU time the
process spent per call (all threads) is reported beside it: tokens per CPU-second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

from chorus.core.types import Request  # noqa: E402
from chorus.providers.local import LocalModel  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SEED = 42
STORY = "Write a long story about a dragon who learns to bake bread."
OPENING = "Once upon a time, in a small village by the sea, there lived"


def cases(max_tokens: int) -> list[tuple[str, LocalModel, Request, Callable[[Any], Any]]]:
    """(label, chorus model, chorus request, direct call on the Llama object)."""
    smol = LocalModel("smollm2-135m", "smollm2-135m")
    chat = [{"role": "system", "content": smol.system}, {"role": "user", "content": STORY}]
    # A plain continuation: no template, no stop, so both run the full max_tokens.
    gemma = LocalModel("gemma3-270m", "gemma3-270m", prompt_template="{prompt}", stop=[])
    settings = {"max_tokens": max_tokens, "temperature": 0, "seed": SEED}
    return [
        ("smollm2-135m (chat)", smol, Request.of(STORY, **settings),
         lambda llm: llm.create_chat_completion(chat, **settings)),
        ("gemma3-270m (completion)", gemma, Request.of(OPENING, **settings),
         lambda llm: llm.create_completion(OPENING, **settings)),
    ]


async def measure(model: LocalModel, request: Request, direct: Callable[[Any], Any],
                  runs: int) -> dict[str, Any]:
    loaded = model.load()
    out: dict[str, Any] = {"direct": [], "chorus": [], "direct_cpu": [], "chorus_cpu": [],
                           "tokens": {}, "same_text": True}
    texts: dict[str, str] = {}
    for i in range(runs + 1):  # the first round warms both paths up and is not counted
        with loaded.lock:
            t, cpu = time.perf_counter(), time.process_time()
            answer = direct(loaded.llama)
            d, d_cpu = time.perf_counter() - t, time.process_time() - cpu
        d_tokens = answer["usage"]["completion_tokens"]
        choice = answer["choices"][0]
        texts["direct"] = choice["message"]["content"] if "message" in choice else choice["text"]
        t, cpu = time.perf_counter(), time.process_time()
        c = await model.complete(request)
        ch, ch_cpu = time.perf_counter() - t, time.process_time() - cpu
        texts["chorus"] = c.text
        out["tokens"] = {"direct": d_tokens, "chorus": c.usage.output_tokens}
        if i:
            # Not the warm-up: llama-cpp-python's first call evaluates the whole prompt in
            # one batch, which can give other text than its later (cached) calls.
            out["same_text"] = out["same_text"] and texts["direct"] == texts["chorus"]
            out["direct"].append(d_tokens / d)
            out["chorus"].append(c.usage.output_tokens / ch)
            out["direct_cpu"].append(d_tokens / d_cpu)
            out["chorus_cpu"].append(c.usage.output_tokens / ch_cpu)
    for key in ("direct", "chorus", "direct_cpu", "chorus_cpu"):
        out[f"median_{key}"] = statistics.median(out[key])
    out["ratio"] = out["median_chorus"] / out["median_direct"]
    out["ratio_cpu"] = out["median_chorus_cpu"] / out["median_direct_cpu"]
    # Each chorus run beside the direct run just before it, which saw about the same load.
    out["ratio_paired"] = statistics.median(
        c / d for c, d in zip(out["chorus"], out["direct"], strict=True)
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()
    command = " ".join([Path(sys.executable).name, *sys.argv])
    print(f"machine: {machine()}; nproc {len(os.sched_getaffinity(0))}; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"command: {command}\n")

    results: dict[str, Any] = {}
    for label, model, request, direct in cases(args.max_tokens):
        results[label] = asyncio.run(measure(model, request, direct, args.runs))

    print("| model | output tokens (direct / chorus) | same text | direct tok/s "
          "| chorus tok/s | chorus / direct | paired | direct tok/CPU-s | chorus tok/CPU-s "
          "| chorus / direct (CPU) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, r in results.items():
        print(f"| {label} | {r['tokens']['direct']} / {r['tokens']['chorus']} "
              f"| {'yes' if r['same_text'] else 'no'} | {r['median_direct']:.1f} "
              f"| {r['median_chorus']:.1f} | {r['ratio']:.3f} | {r['ratio_paired']:.3f} "
              f"| {r['median_direct_cpu']:.1f} | {r['median_chorus_cpu']:.1f} "
              f"| {r['ratio_cpu']:.3f} |")
    print(f"\nmedians of {args.runs} interleaved runs each (paired: median of each chorus "
          "run over the direct run before it); "
          f"load average after: {os.getloadavg()[0]:.2f}")

    out = ROOT / "benchmarks" / "results" / "local_tps.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "machine": machine(),
        "nproc": len(os.sched_getaffinity(0)),
        "command": command,
        "runs": args.runs,
        "max_tokens": args.max_tokens,
        "seed": SEED,
        "results": results,
    }, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
