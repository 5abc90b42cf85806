"""Overhead of one call through chorus's core path, beside a bare coroutine and
LiteLLM's Router.acompletion with mock_response, measured side by side in one run.

    .venv/bin/python benchmarks/bench_overhead.py [--litellm-python .venv-bench/bin/python]
        [--before SRC]   # also an earlier chorus (a checkout at SRC), rounds alternating

chorus path: ``chorus.call(model, request)`` on a zero-latency ScriptedModel (deadline
check, the model's reply logic, usage, price, the Completion and its Span), and a
router node over it. Bare: an ``async def`` returning a prebuilt Completion.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

from chorus import Completion, Request, ScriptedModel, call  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


async def per_call_us(fn: Callable[[], Awaitable[object]], calls: int, rounds: int) -> list[float]:
    for _ in range(1000):
        await fn()
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(calls):
            await fn()
        out.append((time.perf_counter() - t) / calls * 1e6)
    return out


async def run(calls: int, rounds: int) -> dict[str, list[float]]:
    request = Request.of("What is the capital of France?")
    model = ScriptedModel("m", default="Paris")
    ready = Completion("Paris", "m")

    async def bare() -> Completion:
        return ready

    async def chorus_call() -> Completion:
        return await call(model, request)

    results: dict[str, list[float]] = {"bare": [], "chorus": []}
    # Interleave rounds so drift on a shared machine hits both alike.
    for _ in range(rounds):
        results["bare"] += await per_call_us(bare, calls, 1)
        results["chorus"] += await per_call_us(chorus_call, calls, 1)
    return results


def _round(src: str, calls: int) -> dict[str, list[float]]:
    """One round of ``run`` in a fresh process importing chorus from ``src``."""
    env = {**os.environ, "PYTHONPATH": str(Path(src) / "src")}
    proc = subprocess.run([sys.executable, __file__, "--emit", "--calls", str(calls)],
                          capture_output=True, text=True, env=env, timeout=600, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--litellm-python", default=str(ROOT / ".venv-bench/bin/python"))
    ap.add_argument("--litellm-calls", type=int, default=300)
    ap.add_argument("--json", default=str(ROOT / "benchmarks/results/overhead.json"))
    ap.add_argument("--before", metavar="SRC",
                    help="a checkout of an earlier chorus: its call() measured in rounds "
                         "alternating with this one's, each in a fresh process")
    ap.add_argument("--emit", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.emit:  # one round in this process, for --before
        print(json.dumps(asyncio.run(run(args.calls, 1))))
        return
    if args.before:
        res = {"bare": [], "chorus": [], "chorus_before": []}
        for _ in range(args.rounds):
            for key, src in (("chorus_before", args.before), ("chorus", str(ROOT))):
                got = _round(src, args.calls)
                res[key] += got["chorus"]
                if key == "chorus":
                    res["bare"] += got["bare"]
    else:
        res = asyncio.run(run(args.calls, args.rounds))
    med = {k: statistics.median(v) for k, v in res.items()}
    litellm: dict[str, object] | None = None
    if Path(args.litellm_python).exists():
        proc = subprocess.run(
            [args.litellm_python, str(ROOT / "benchmarks/litellm_router.py"),
             str(args.litellm_calls), "5"],
            capture_output=True, text=True, timeout=900,
        )
        if proc.returncode == 0:
            litellm = json.loads(proc.stdout.strip().splitlines()[-1])
            med["litellm_router"] = statistics.median(litellm["per_call_us"])  # type: ignore[arg-type]
        else:
            print("litellm run failed:", proc.stderr.strip().splitlines()[-1:], file=sys.stderr)
    else:
        print(f"no {args.litellm_python}: LiteLLM column skipped "
              "(python3 -m venv .venv-bench && .venv-bench/bin/pip install litellm==1.110.2)",
              file=sys.stderr)

    overhead = med["chorus"] - med["bare"]
    print(f"machine: {machine()}")
    print(f"command: {' '.join(sys.argv)}")
    print()
    print("| path | µs per call (median) |")
    print("|---|---|")
    print(f"| bare coroutine | {med['bare']:.2f} |")
    if "chorus_before" in med:
        print(f"| chorus `call()` → ScriptedModel, before ({args.before}) "
              f"| {med['chorus_before']:.2f} |")
    print(f"| chorus `call()` → ScriptedModel | {med['chorus']:.2f} |")
    if "litellm_router" in med:
        print(f"| LiteLLM {litellm['litellm_version']} `Router.acompletion` (mock_response) "  # type: ignore[index]
              f"| {med['litellm_router']:.1f} |")
    print()
    print(f"chorus overhead over bare: {overhead:.2f} µs per call")
    if "litellm_router" in med:
        print(f"LiteLLM Router / chorus: {med['litellm_router'] / med['chorus']:.0f}x")
    Path(args.json).write_text(json.dumps({"machine": machine(), "median_us": med,
                                           "chorus_overhead_us": overhead, "raw": res,
                                           "litellm": litellm}, indent=2))


if __name__ == "__main__":
    main()
