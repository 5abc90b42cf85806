"""Gateway throughput and added latency: chorus serve (and LiteLLM's proxy, when it can
be started from .venv-bench) in front of a fast mock upstream, all on 127.0.0.1.

    .venv/bin/python benchmarks/bench_gateway.py [--seconds 4] [--latency-requests 500]
        [--before SRC]   # also chorus serve from an earlier checkout at SRC, in the same run

Load comes from a raw-asyncio keep-alive HTTP/1.1 client in this script (cheaper than
httpx, so the cores go to the servers). Sustained requests/s: closed loop at concurrency
1, 8 and 32 for a fixed time. Added latency: an open loop at ~100 requests/s, p50/p99 of
the gateway minus p50/p99 of calling the upstream directly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BODY = json.dumps({"model": "{model}", "messages": [{"role": "user", "content": "ping"}],
                   "max_tokens": 8})
#: The same request offering two function tools (what an agent sends on every turn).
TOOLS_BODY = json.dumps({
    "model": "{model}", "messages": [{"role": "user", "content": "ping"}], "max_tokens": 8,
    "tools": [{"type": "function", "function": {
        "name": name, "description": f"{name} for a city", "parameters": {
            "type": "object", "properties": {"city": {"type": "string"},
                                             "unit": {"type": "string",
                                                      "enum": ["c", "f"]}},
            "required": ["city"]}}} for name in ("get_weather", "get_time")],
    "tool_choice": "auto", "parallel_tool_calls": False})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request_bytes(port: int, model: str, auth: str | None = None, tools: bool = False
                  ) -> bytes:
    body = (TOOLS_BODY if tools else BODY).replace("{model}", model).encode()
    extra = f"authorization: Bearer {auth}\r\n" if auth else ""
    return (f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n{extra}\r\n"
            ).encode() + body


class Conn:
    """One keep-alive connection that sends one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Conn:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        return cls(r, w)

    async def call(self, raw: bytes) -> int:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        low = head.lower()
        i = low.find(b"content-length:")
        if i >= 0:
            await self.reader.readexactly(int(low[i + 15:low.find(b"\r\n", i)]))
        else:  # chunked
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        return status

    def close(self) -> None:
        self.writer.close()


async def sustained(port: int, raw: bytes, concurrency: int, seconds: float) -> dict[str, float]:
    conns = [await Conn.open(port) for _ in range(concurrency)]
    done = errors = 0
    stop = time.perf_counter() + seconds + 0.5
    measure_from = time.perf_counter() + 0.5  # warm-up half a second

    async def worker(c: Conn) -> None:
        nonlocal done, errors
        while (now := time.perf_counter()) < stop:
            status = await c.call(raw)
            if time.perf_counter() >= measure_from:
                done += 1
                errors += status != 200
            del now

    await asyncio.gather(*(worker(c) for c in conns))
    for c in conns:
        c.close()
    return {"rps": done / seconds, "errors": errors}


async def paced(port: int, raw: bytes, rate: float, count: int) -> list[float]:
    """Latencies (s) of ``count`` requests started at ``rate`` per second (open loop)."""
    pool: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(8):
        pool.put_nowait(await Conn.open(port))
    for _ in range(20):  # warm the connections and the server
        c = await pool.get()
        await c.call(raw)
        pool.put_nowait(c)
    out: list[float] = []

    async def one() -> None:
        c = await pool.get()
        t0 = time.perf_counter()
        status = await c.call(raw)
        out.append(time.perf_counter() - t0)
        pool.put_nowait(c)
        assert status == 200, status

    start = time.perf_counter()
    tasks = []
    for i in range(count):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    while not pool.empty():
        pool.get_nowait().close()
    return out


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


@contextlib.contextmanager
def process(cmd: list[str], port: int, log: Path, env: dict[str, str] | None = None,
            timeout: float = 60.0) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})})
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[0]} exited: {log.read_text()[-1500:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{' '.join(cmd[:3])} did not start in {timeout:g}s")
            time.sleep(0.1)
        time.sleep(0.3)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def measure(port: int, raw: bytes, direct: dict[str, float] | None, args: argparse.Namespace
            ) -> dict[str, float]:
    out: dict[str, float] = {}
    for c in (1, 8, 32):
        out[f"rps_c{c}"] = asyncio.run(sustained(port, raw, c, args.seconds))["rps"]
    lat = asyncio.run(paced(port, raw, 100.0, args.latency_requests))
    out["p50_ms"], out["p99_ms"] = pct(lat, 0.5) * 1e3, pct(lat, 0.99) * 1e3
    if direct is not None:
        out["added_p50_ms"] = out["p50_ms"] - direct["p50_ms"]
        out["added_p99_ms"] = out["p99_ms"] - direct["p99_ms"]
    return out


def entry_points_of(src: Path, into: Path) -> Path:
    """A folder holding chorus's package metadata as the checkout at ``src`` declares it:
    first on the path, its ``chorus.plugins`` entry points stand in for the installed
    ones (an earlier checkout may not have every plugin the installed code lists)."""
    project = tomllib.loads((src / "pyproject.toml").read_text())["project"]
    info = into / f"chorus_llm-{project['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\n"
                                   f"Version: {project['version']}\n")
    eps = project.get("entry-points", {}).get("chorus.plugins", {})
    (info / "entry_points.txt").write_text(
        "[chorus.plugins]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()))
    return into


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--latency-requests", type=int, default=500)
    ap.add_argument("--no-litellm", action="store_true",
                    help="measure the upstream and chorus only (quicker comparisons)")
    ap.add_argument("--before", metavar="SRC",
                    help="also serve with the chorus of an earlier checkout at SRC (its "
                         "src/ first on PYTHONPATH), measured just before this one")
    ap.add_argument("--tools", action="store_true",
                    help="also measure chorus with two function tools in every request, "
                         "against the upstream called directly with the same body")
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="bench_gateway_"))
    up = free_port()
    results: dict[str, dict[str, float] | str] = {}
    with process([sys.executable, str(ROOT / "benchmarks" / "mock_upstream.py"), "--port",
                  str(up)], up, tmp / "upstream.log"):
        direct_raw = request_bytes(up, "mock")
        lat = asyncio.run(paced(up, direct_raw, 100.0, args.latency_requests))
        direct = {"p50_ms": pct(lat, 0.5) * 1e3, "p99_ms": pct(lat, 0.99) * 1e3}
        direct.update({f"rps_c{c}": asyncio.run(sustained(up, direct_raw, c, args.seconds))
                       ["rps"] for c in (1, 8, 32)})
        results["upstream (direct)"] = direct

        cfg = tmp / "chorus.yaml"
        cfg.write_text(f"models:\n  mock:\n    provider: openai\n    model: mock\n"
                       f"    base_url: http://127.0.0.1:{up}/v1\n    api_key: none\n")
        servers = [("chorus serve (1 worker)", {"PYTHONPATH": str(ROOT / "src")})]
        if args.before:
            meta = entry_points_of(Path(args.before), tmp / "before-metadata")
            servers.insert(0, (f"chorus serve (1 worker), before ({args.before})",
                               {"PYTHONPATH": f"{meta}{os.pathsep}{Path(args.before) / 'src'}"}))
        for name, env in servers:
            gw = free_port()
            with process([sys.executable, "-m", "chorus.cli.main",
                          "serve", "-c", str(cfg), "--port", str(gw)], gw,
                         tmp / "chorus.log", env=env):
                results[name] = measure(gw, request_bytes(gw, "mock"), direct, args)
                if args.tools and name == "chorus serve (1 worker)":
                    raw = request_bytes(up, "mock", tools=True)
                    lat = asyncio.run(paced(up, raw, 100.0, args.latency_requests))
                    direct_tools = {"p50_ms": pct(lat, 0.5) * 1e3,
                                    "p99_ms": pct(lat, 0.99) * 1e3}
                    direct_tools.update({f"rps_c{c}": asyncio.run(sustained(
                        up, raw, c, args.seconds))["rps"] for c in (1, 8, 32)})
                    results["upstream (direct), with tools"] = direct_tools
                    results["chorus serve (1 worker), with tools"] = measure(
                        gw, request_bytes(gw, "mock", tools=True), direct_tools, args)

        litellm = ROOT / ".venv-bench" / "bin" / "litellm"
        if args.no_litellm:
            pass
        elif litellm.exists():
            lcfg = tmp / "litellm.yaml"
            # The proxy refuses to start without a strong master key; no database is set.
            key = "sk-" + secrets.token_hex(24)
            lcfg.write_text(f"model_list:\n  - model_name: mock\n    litellm_params:\n"
                            f"      model: openai/mock\n      api_base: http://127.0.0.1:{up}/v1\n"
                            f"      api_key: none\ngeneral_settings:\n  master_key: {key}\n")
            lp = free_port()
            try:
                # The local price table: no fetch from GitHub (this machine has no network).
                with process([str(litellm), "--config", str(lcfg), "--port", str(lp),
                              "--host", "127.0.0.1", "--num_workers", "1"], lp,
                             tmp / "litellm.log", env={"LITELLM_LOCAL_MODEL_COST_MAP": "True"},
                             timeout=120):
                    results["LiteLLM proxy (1 worker)"] = measure(
                        lp, request_bytes(lp, "mock", key), direct, args)
            except (RuntimeError, AssertionError) as exc:
                results["LiteLLM proxy (1 worker)"] = f"could not run: {exc}"[:400]
        else:
            results["LiteLLM proxy (1 worker)"] = "not installed in .venv-bench"
    shutil.rmtree(tmp, ignore_errors=True)

    load = {"before": load_before, "after": os.getloadavg()[0]}
    cmd = "python benchmarks/bench_gateway.py " + " ".join(sys.argv[1:])
    print(f"\n`{cmd.strip()}` on {machine()}; load average {load['before']:.2f} before the "
          f"run, {load['after']:.2f} after\n")
    print("| target | rps c=1 | rps c=8 | rps c=32 | p50 ms @100rps | p99 ms @100rps "
          "| added p50 ms | added p99 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        if isinstance(r, str):
            print(f"| {name} | {r} |  |  |  |  |  |  |")
            continue
        added = (f"{r['added_p50_ms']:.2f} | {r['added_p99_ms']:.2f}"
                 if "added_p50_ms" in r else "- | -")
        print(f"| {name} | {r['rps_c1']:.0f} | {r['rps_c8']:.0f} | {r['rps_c32']:.0f} | "
              f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {added} |")
    out = ROOT / "benchmarks" / "results" / "gateway.json"
    out.write_text(json.dumps({"command": cmd.strip(), "machine": machine(), "load": load,
                               "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
