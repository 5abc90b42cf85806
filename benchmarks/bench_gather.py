"""A vote over three zero-latency scripted children, with its children gathered two ways,
measured A/B in one process: ``asyncio.gather`` (the old code) against tasks awaited in
order (``chorus.patterns._concurrent.gather``).

    .venv/bin/python benchmarks/bench_gather.py [--rounds 7] [--requests 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402
from bench_patterns import YAML  # noqa: E402

import chorus.patterns._concurrent as concurrent  # noqa: E402
import chorus.patterns.vote as vote_module  # noqa: E402
from chorus import Config, Request, call  # noqa: E402
from chorus.core.model import Model  # noqa: E402


async def with_asyncio_gather(models: Sequence[Model], request: Request | Sequence[Request],
                              *, timeout_s: float | None = None) -> list[concurrent.Outcome]:
    reqs = [request] * len(models) if isinstance(request, Request) else list(request)
    return list(await asyncio.gather(*(concurrent.call_one(m, r, timeout_s)
                                       for m, r in zip(models, reqs, strict=True))))


async def main(rounds: int, requests: int) -> None:
    vote = Config.from_text(YAML, "bench_patterns.yaml").get("vote")
    request = Request.of("Is the sentence 'I loved this film' positive or negative?")
    arms = {"asyncio.gather": with_asyncio_gather, "tasks awaited in order": concurrent.gather}
    results: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(rounds):
        for name, gather in arms.items():
            vote_module.gather = gather  # type: ignore[assignment]
            for _ in range(requests // 10):
                await call(vote, request)
            t = time.perf_counter()
            for _ in range(requests):
                await call(vote, request)
            results[name].append((time.perf_counter() - t) / requests * 1e6)
    print(f"machine: {machine()}")
    print(f"command: {' '.join(sys.argv)}")
    print()
    print("| children gathered with | µs per vote request (median) |")
    print("|---|---|")
    for name, values in results.items():
        print(f"| {name} | {statistics.median(values):.1f} |")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--requests", type=int, default=1000)
    args = ap.parse_args()
    asyncio.run(main(args.rounds, args.requests))
