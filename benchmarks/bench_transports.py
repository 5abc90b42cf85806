"""The three implementations of chorus's one HTTP transport, side by side in one run: the
lean HTTP/1.1 client (``H1Transport``, what plain http:// upstreams use), aiohttp (https,
proxies) and httpx, each driving the same ``Endpoint.request_json`` against the mock
upstream on 127.0.0.1, rounds alternating.

    .venv/bin/python benchmarks/bench_transports.py [--calls 2000] [--rounds 5]

Reported per call: wall time and this process's CPU time (user + system), medians over
the rounds. The upstream runs in its own process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

from chorus.http import (  # noqa: E402
    AiohttpTransport,
    Endpoint,
    H1Transport,
    HttpClient,
    HttpxTransport,
    Transport,
)
from chorus.http._h1 import H1Pool  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD = {"model": "mock", "messages": [{"role": "user", "content": "ping"}], "max_tokens": 8}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _transports() -> dict[str, Transport]:
    return {
        "h1 (lean HTTP/1.1)": H1Transport(H1Pool(30.0)),
        "aiohttp": AiohttpTransport(aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=30.0), connector=aiohttp.TCPConnector())),
        "httpx": HttpxTransport(httpx.AsyncClient(timeout=30.0)),
    }


async def _round(endpoint: Endpoint, url: str, calls: int) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        await endpoint.request_json("POST", url, headers={"Authorization": "Bearer x"},
                                    payload=PAYLOAD)
    return ((time.perf_counter() - wall) / calls * 1e6,
            (time.process_time() - cpu) / calls * 1e6)


async def run(port: int, calls: int, rounds: int) -> dict[str, dict[str, float]]:
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    transports = _transports()
    endpoints = {name: Endpoint(HttpClient(timeout=30.0, transport=t), model="mock",
                                model_id="mock") for name, t in transports.items()}
    for endpoint in endpoints.values():
        await _round(endpoint, url, 200)  # warm: connections open, code paths hot
    got: dict[str, list[tuple[float, float]]] = {name: [] for name in endpoints}
    for _ in range(rounds):
        for name, endpoint in endpoints.items():
            got[name].append(await _round(endpoint, url, calls))
    for t in transports.values():
        await t.aclose()
    return {name: {"wall_us": statistics.median(w for w, _ in v),
                   "cpu_us": statistics.median(c for _, c in v)} for name, v in got.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    port = _free_port()
    up = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "mock_upstream.py"),
                           "--port", str(port)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        load = os.getloadavg()[0]
        res = asyncio.run(run(port, args.calls, args.rounds))
    finally:
        up.terminate()
        up.wait()
    print(f"`python benchmarks/bench_transports.py --calls {args.calls} --rounds {args.rounds}`"
          f" on {machine()}; load average {load:.2f} at the start\n")
    print("| transport | wall µs per call | CPU µs per call (this process) |")
    print("|---|---|---|")
    for name, r in res.items():
        print(f"| {name} | {r['wall_us']:.0f} | {r['cpu_us']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
