"""Overhead of the policy wrappers (``core.compose.Wrapper``): one call through
retry(breaker(ratelimit(budget(scripted)))), ``complete`` and ``stream``, beside the same
zero-latency ScriptedModel called alone, rounds alternating in one process.

    nice -n 5 .venv/bin/python benchmarks/bench_wrappers.py [--calls N] [--rounds R]

What it measures: wall time per request, from ``call(model, request)`` (complete) or from
opening ``stream_or_complete(model, request)`` to its final Completion (stream: every
piece consumed), with each policy on its real code path: the budget reserves and settles
a token cap in a MemoryStore, the rate limit takes a token from a bucket (limits far
above the load, so nothing waits), the breaker records each outcome (closed
throughout), the retry never fires (the model never fails). Overhead = stack − leaf;
per wrapper = overhead / 4. No network, no telemetry.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

from chorus import Model, Request, ScriptedModel, call  # noqa: E402
from chorus.core.compose import stream_or_complete  # noqa: E402
from chorus.policies._budget_math import Limit  # noqa: E402
from chorus.policies.breaker import Breaker  # noqa: E402
from chorus.policies.budget import Budget  # noqa: E402
from chorus.policies.ratelimit import RateLimit  # noqa: E402
from chorus.policies.retry import Retry  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ANSWER = "Paris is the capital and largest city of France."


def stack(leaf: Model) -> Model:
    """retry(breaker(ratelimit(budget(leaf)))), each on its ordinary settings."""
    budget = Budget("budget", leaf, request=Limit(tokens=1e12))
    limited = RateLimit("ratelimit", budget, requests_per_minute=1e12, on_limit="refuse")
    return Retry("retry", Breaker("breaker", limited))


async def per_call_us(fn: Callable[[], Awaitable[object]], calls: int) -> float:
    t = time.perf_counter()
    for _ in range(calls):
        await fn()
    return (time.perf_counter() - t) / calls * 1e6


async def run(calls: int, rounds: int) -> tuple[dict[str, list[float]], int]:
    request = Request.of("What is the capital of France?")
    leaf = ScriptedModel("m", default=ANSWER)
    wrapped = stack(leaf)

    def completing(model: Model) -> Callable[[], Awaitable[object]]:
        async def go() -> object:
            return await call(model, request)
        return go

    def streaming(model: Model) -> Callable[[], Awaitable[object]]:
        async def go() -> object:
            n = 0
            async for _ in stream_or_complete(model, request):
                n += 1
            return n
        return go

    cases = {
        "leaf complete": completing(leaf),
        "stack complete": completing(wrapped),
        "leaf stream": streaming(leaf),
        "stack stream": streaming(wrapped),
    }
    pieces = 0
    async for _ in stream_or_complete(wrapped, request):
        pieces += 1
    for fn in cases.values():  # warm up
        await per_call_us(fn, 1000)
    out: dict[str, list[float]] = {k: [] for k in cases}
    # Rounds alternate so drift on a shared machine hits every case alike.
    for _ in range(rounds):
        for key, fn in cases.items():
            out[key].append(await per_call_us(fn, calls))
    return out, pieces - 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=5_000, help="calls per round and case")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--json", default=str(ROOT / "benchmarks/results/wrappers.json"))
    args = ap.parse_args()

    res, pieces = asyncio.run(run(args.calls, args.rounds))
    med = {k: statistics.median(v) for k, v in res.items()}
    print(f"machine: {machine()}")
    print(f"command: {' '.join(sys.argv)}")
    print(f"{args.rounds} rounds x {args.calls} calls per case; stream: {pieces} pieces "
          "then the final Completion")
    print()
    print("| path | µs per request (median) | min-max over rounds |")
    print("|---|---|---|")
    for key, v in res.items():
        print(f"| {key} | {med[key]:.1f} | {min(v):.1f}-{max(v):.1f} |")
    print()
    for way in ("complete", "stream"):
        over = med[f"stack {way}"] - med[f"leaf {way}"]
        print(f"{way}: four wrappers add {over:.1f} µs per request, {over / 4:.1f} µs each")
    Path(args.json).write_text(json.dumps({"machine": machine(), "command": sys.argv,
                                           "stream_pieces": pieces, "median_us": med,
                                           "raw": res}, indent=2))


if __name__ == "__main__":
    main()
