"""Two OS processes share one budget and one breaker through one Redis."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from chorus.core.pricing import Price
from chorus.policies._guarded import estimate
from tests.policies._faulty import unique

# Each process runs this with asyncio: N concurrent requests against a global $-window
# (mode "budget"), or three failing calls that open the breaker ("trip"), or one call to
# a healthy model of the same name behind the same breaker ("check").
WORKER = """
import asyncio, json, random, sys
from chorus.core.errors import BudgetExceeded, ServerError
from chorus.core.pricing import Price
from chorus.core.types import Completion, Request, Usage
from chorus.policies.breaker import Breaker
from chorus.policies.budget import Budget, Window
from chorus.providers.function import FunctionModel
from chorus.providers.scripted import ScriptedModel
from chorus.stores import RedisStore

url, ns, mode, n, start, seed = sys.argv[1:7]  # start: processes to wait for

async def main():
    store = RedisStore(url, namespace=ns)
    out = {}
    if mode == "budget":
        rng = random.Random(int(seed))
        async def reply(request):
            await asyncio.sleep(rng.random() * 0.02)
            return leaf.finish("x", Usage(3, rng.randint(1, 20)), 0.0)
        leaf = FunctionModel("leaf", reply, price=Price(1000, 2000))
        budget = Budget("shared", leaf, window=Window(usd=1.0, per="global", seconds=60),
                        store=store)
        # A barrier in Redis: both processes start their requests together.
        await store.incr("ready", 1)
        while float(await store.get("ready") or 0) < int(start):
            await asyncio.sleep(0.005)
        req = Request.of("hello there", max_tokens=20)
        res = await asyncio.gather(*(budget.complete(req) for _ in range(int(n))),
                                   return_exceptions=True)
        bad = [r for r in res if not isinstance(r, (Completion, BudgetExceeded))]
        assert not bad, bad
        out = {"answered": sum(isinstance(r, Completion) for r in res),
               "refused": sum(isinstance(r, BudgetExceeded) for r in res),
               "spent": sum(r.cost_usd for r in res if isinstance(r, Completion))}
    else:
        fail = mode == "trip"
        model = ScriptedModel("upstream", default="fine",
                              fail_with="server_error" if fail else None, fail_times=-1)
        br = Breaker("guard", model, failures=3, cooldown_s=60, store=store)
        errors = []
        for _ in range(3 if fail else 1):
            try:
                await br.complete(Request.of("q"))
            except ServerError as exc:
                errors.append(str(exc))
        out = {"errors": errors, "calls": len(model.calls), "status": await br.status()}
    await store.aclose()
    print(json.dumps(out))

asyncio.run(main())
"""


def spawn(script: Path, *args: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(script), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def result(proc: subprocess.Popen[str]) -> dict[str, object]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    data: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return data


def test_two_processes_share_a_budget_and_a_breaker(redis_url: str, tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    ns = unique("mp")
    procs = [spawn(script, redis_url, ns, "budget", 100, 2, seed) for seed in (1, 2)]
    a, b = (result(p) for p in procs)
    spent = float(a["spent"]) + float(b["spent"])  # type: ignore[arg-type]
    one_max = estimate(3, 20, Price(1000, 2000)).usd
    assert spent <= 1.0 + one_max  # the shared $1 budget held across both processes
    # Each process alone could have spent $1: both were refused some and answered some.
    for r in (a, b):
        assert r["answered"] and r["refused"]
    assert int(a["answered"]) + int(b["answered"]) >= int(1.0 / one_max)  # type: ignore[call-overload]

    tripped = result(spawn(script, redis_url, ns, "trip", 0, 0, 0))
    assert tripped["calls"] == 3
    assert tripped["status"]["state"] == "open"  # type: ignore[index]
    checked = result(spawn(script, redis_url, ns, "check", 0, 0, 0))
    assert checked["calls"] == 0  # the other process's open circuit refused it
    assert "circuit open" in checked["errors"][0]  # type: ignore[index]
