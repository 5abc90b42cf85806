"""Budget accuracy under 200 concurrent requests against one $1 window budget:
(a) one process, MemoryStore; (b) two processes x 100 requests sharing one Redis;
(c) for contrast, a naive read-check-call-charge budget (no reservation) in one process.

    .venv/bin/python benchmarks/bench_budget.py [--rounds 5] [--requests 200]

Each request's leaf answers after 0-20 ms with 3 prompt tokens and 1-20 output tokens
(max_tokens 20) at $1000/$2000 per million tokens, so one request may cost at most
$0.043. The bound: spending passes the limit by at most one request's maximum. (b)
starts a throwaway ``redis-server`` on 127.0.0.1; the workers are this script run with
``--worker``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

from chorus.core.errors import BudgetExceeded  # noqa: E402
from chorus.core.pricing import Price  # noqa: E402
from chorus.core.types import Completion, Request, Usage  # noqa: E402
from chorus.policies._guarded import estimate  # noqa: E402
from chorus.policies.budget import Budget, Window  # noqa: E402
from chorus.providers.function import FunctionModel  # noqa: E402
from chorus.stores import MemoryStore, RedisStore, Store  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PRICE = Price(1000, 2000)
LIMIT = 1.0
MAX_TOKENS = 20
PROMPT = "hello there"  # 3 tokens at ~4 characters a token
ONE_MAX = estimate(3, MAX_TOKENS, PRICE).usd


def leaf(seed: int) -> FunctionModel:
    rng = random.Random(seed)

    async def reply(request: Request) -> Completion:
        await asyncio.sleep(rng.random() * 0.02)
        return model.finish("x", Usage(3, rng.randint(1, MAX_TOKENS)), 0.0)

    model = FunctionModel("leaf", reply, price=PRICE)
    return model


async def burst(store: Store, n: int, seed: int, barrier: int = 1) -> dict[str, Any]:
    """``n`` concurrent requests through the shared budget; what they spent."""
    budget = Budget("bench", leaf(seed), window=Window(usd=LIMIT, per="global", seconds=600),
                    store=store)
    if barrier > 1:  # start together with the other processes
        await store.incr("ready", 1)
        while float(await store.get("ready") or 0) < barrier:
            await asyncio.sleep(0.005)
    req = Request.of(PROMPT, max_tokens=MAX_TOKENS)
    res = await asyncio.gather(*(budget.complete(req) for _ in range(n)),
                               return_exceptions=True)
    odd = [r for r in res if not isinstance(r, Completion | BudgetExceeded)]
    if odd:
        raise RuntimeError(f"unexpected results: {odd[:3]}")
    return {"answered": sum(isinstance(r, Completion) for r in res),
            "refused": sum(isinstance(r, BudgetExceeded) for r in res),
            "spent": sum(r.cost_usd for r in res if isinstance(r, Completion))}


async def naive(n: int, seed: int) -> dict[str, Any]:
    """The same burst through a check-then-charge budget: read, compare, call, add."""
    store, model = MemoryStore(), leaf(seed)
    req = Request.of(PROMPT, max_tokens=MAX_TOKENS)

    async def one() -> Completion | None:
        if float(await store.get("spent") or 0) + ONE_MAX > LIMIT:
            return None
        answer = await model.complete(req)
        await store.incr("spent", answer.cost_usd)
        return answer

    res = await asyncio.gather(*(one() for _ in range(n)))
    done = [r for r in res if r is not None]
    return {"answered": len(done), "refused": n - len(done),
            "spent": sum(r.cost_usd for r in done)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def two_processes(n: int, seed: int, url: str) -> dict[str, Any]:
    ns = f"bench{time.monotonic_ns()}:"
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", url, ns, str(n // 2),
                               str(seed * 10 + i)], stdout=subprocess.PIPE, text=True)
             for i in range(2)]
    parts = []
    for p in procs:
        out, _ = p.communicate(timeout=300)
        if p.returncode != 0:
            raise RuntimeError(f"worker failed with {p.returncode}")
        parts.append(json.loads(out.strip().splitlines()[-1]))
    return {k: sum(p[k] for p in parts) for k in ("answered", "refused", "spent")}


def start_redis(tmp: str) -> tuple[subprocess.Popen[bytes], str]:
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", tmp],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(400):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as c:
                c.sendall(b"PING\r\n")
                if c.recv(16).startswith(b"+PONG"):
                    return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("redis-server did not start")


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    over = [max(0.0, r["spent"] - LIMIT) for r in runs]
    return {"runs": runs, "max_spent": max(r["spent"] for r in runs),
            "max_overspend": max(over), "bound": ONE_MAX,
            "held": all(o <= ONE_MAX + 1e-9 for o in over),
            "min_answered": min(r["answered"] for r in runs)}


def worker(argv: list[str]) -> None:
    url, ns, n, seed = argv

    async def go() -> dict[str, Any]:
        store = RedisStore(url, namespace=ns)
        try:
            return await burst(store, int(n), int(seed), barrier=2)
        finally:
            await store.aclose()

    print(json.dumps(asyncio.run(go())))


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        worker(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--json", default=str(ROOT / "benchmarks/results/budget.json"))
    args = ap.parse_args()
    n = args.requests

    memory = summary([asyncio.run(burst(MemoryStore(), n, s)) for s in range(args.rounds)])
    contrast = summary([asyncio.run(naive(n, s)) for s in range(args.rounds)])
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_redis(tmp)
        try:
            redis = summary([two_processes(n, s, url) for s in range(args.rounds)])
        finally:
            proc.terminate()
            proc.wait(timeout=10)

    print(f"machine: {machine()}")
    print(f"command: {' '.join(sys.argv)}")
    print()
    print(f"{n} concurrent requests against one ${LIMIT:g} window budget, {args.rounds} rounds; "
          f"one request may cost up to ${ONE_MAX:.3f} (the bound on overspend).")
    print()
    print("| case | answered (min) | spent (max) | overspend (max) | bound | held |")
    print("|---|---|---|---|---|---|")
    rows = [("(a) 1 process, MemoryStore, atomic reserve", memory),
            (f"(b) 2 processes x {n // 2}, one Redis, atomic reserve", redis),
            ("(c) 1 process, naive check-then-charge (no reservation)", contrast)]
    for label, s in rows:
        print(f"| {label} | {s['min_answered']} | ${s['max_spent']:.4f} "
              f"| ${s['max_overspend']:.4f} | ${s['bound']:.3f} "
              f"| {'yes' if s['held'] else 'no'} |")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(
        {"machine": machine(), "command": " ".join(sys.argv), "requests": n,
         "limit_usd": LIMIT, "one_request_max_usd": ONE_MAX, "memory": memory,
         "redis_two_processes": redis, "naive": contrast}, indent=2))


if __name__ == "__main__":
    main()
