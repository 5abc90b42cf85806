"""``chorus batch`` throughput against a mock upstream that takes 200 ms a call: items per
second against concurrency for the local engine, for Ray with one and two workers, and for
the simplest thing a user would write instead (``asyncio.gather`` over the openai SDK
with a semaphore), all in one run; and chorus's own CPU cost per item on each.

The Ray cluster runs on 127.0.0.1 in a network namespace of its own (Ray never takes
127.0.0.1 as a node's address while the machine has another interface), so the script
starts itself again under ``unshare -n``.

    nice -n 10 .venv/bin/python benchmarks/bench_batch.py [--delay-ms 200] [--rounds 8]

CPU per item: the driver's process time, plus (Ray) the worker processes' CPU time read
from /proc; the mock upstream's own CPU is not counted. Each timed run follows an untimed
warm-up on the same workers. Raw figures: ``benchmarks/results/batch.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _machine import machine  # noqa: E402

from chorus.batch import Job, RayPool, Worker, Writer, dispatch, ray_session, stream  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def session(cmd: list[str], log: Path, env: dict[str, str] | None = None
            ) -> Iterator[subprocess.Popen[bytes]]:
    """A process in a session of its own, stopped with its whole group."""
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    try:
        yield proc
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(15)
            time.sleep(0.5)


def cpu_of(pids: list[int]) -> float:
    """User + system CPU seconds of these processes, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def write_items(path: Path, n: int) -> Path:
    with path.open("w") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"item-{i}", "prompt": f"question {i}"}) + "\n")
    return path


def n_items(concurrency: int, rounds: int) -> int:
    return min(4096, max(40, concurrency * rounds))


def run_chorus(job: Job, tmp: Path, n: int, concurrency: int, workers: int) -> dict[str, float]:
    """One timed run of ``n`` items, after an untimed warm-up on the same workers (their
    connections to the upstream open there)."""
    items = write_items(tmp / "in.jsonl", n)
    warm = write_items(tmp / "warm.jsonl", min(n, 2 * concurrency * max(1, workers)))
    out = tmp / "out.jsonl"

    async def timed(answer: Any, lanes: int, pids: list[int]) -> tuple[float, float]:
        for path, name in ((warm, "warm"), (items, "out")):
            target = tmp / f"{name}.out.jsonl"
            target.unlink(missing_ok=True)
            writer = Writer(target)
            c0, w0 = time.process_time(), cpu_of(pids)
            try:
                res = await dispatch(stream(path), answer, writer, concurrency=lanes)
            finally:
                writer.close()
        return res.elapsed_s, time.process_time() - c0 + cpu_of(pids) - w0

    async def go() -> tuple[float, float]:
        if workers == 0:
            worker = Worker(job)
            try:
                return await timed(worker.answer, concurrency, [])
            finally:
                await worker.aclose()
        pool = RayPool(job, workers)
        try:
            return await timed(pool.answer, concurrency * workers, await pool.start())
        finally:
            await pool.close()

    elapsed, cpu = asyncio.run(go())
    lines = (tmp / "out.out.jsonl").read_text().splitlines()
    assert len(lines) == n, f"{len(lines)} lines for {n} items"
    failed = sum('"error"' in x for x in lines)
    out.unlink(missing_ok=True)
    return {"items_s": n / elapsed, "cpu_ms": cpu / n * 1e3, "failed": failed}


def run_openai(base_url: str, n: int, concurrency: int) -> dict[str, float]:
    """The loop a user would write: the SDK's defaults, a semaphore, and a failure kept as
    a failure (the SDK's 5 s connect timeout does fire on a starved event loop)."""
    from openai import APIError, AsyncOpenAI

    async def go() -> tuple[float, float]:
        client = AsyncOpenAI(base_url=base_url, api_key="none", max_retries=0)
        sem = asyncio.Semaphore(concurrency)
        answers: list[str | None] = []

        async def one(i: int) -> None:
            async with sem:
                try:
                    r = await client.chat.completions.create(
                        model="mock", messages=[{"role": "user", "content": f"question {i}"}])
                except APIError:
                    failed.append(i)
                    return
                answers.append(r.choices[0].message.content)

        await asyncio.gather(*(one(i) for i in range(min(n, 2 * concurrency))))  # warm-up
        answers.clear()
        failed.clear()
        c0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        await client.close()
        assert len(answers) + len(failed) == n
        return elapsed, cpu

    failed: list[int] = []
    elapsed, cpu = asyncio.run(go())
    return {"items_s": (n - len(failed)) / elapsed, "cpu_ms": cpu / n * 1e3,
            "failed": len(failed)}


CONFIG = """\
models:
  up:
    provider: openai
    base_url: {url}
    model: mock
    api_key: none
    price: {{input: 1, output: 1}}
systems:
  job: up
"""


def main(args: argparse.Namespace) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    rows: list[tuple[str, int, int, dict[str, float]]] = []
    with contextlib.ExitStack() as stack:
        up_log = tmp / "upstream.log"
        stack.enter_context(session([sys.executable, str(HERE / "mock_upstream.py"),
                                     "--port", "0", "--delay-ms", str(args.delay_ms)], up_log))
        deadline = time.monotonic() + 60
        while not up_log.read_text().strip().isdigit():
            assert time.monotonic() < deadline, "mock upstream did not start"
            time.sleep(0.1)
        url = f"http://127.0.0.1:{int(up_log.read_text())}/v1"
        cfg = tmp / "cfg.yaml"
        cfg.write_text(CONFIG.format(url=url))
        job = Job.from_file(cfg, "job", "bench")
        levels = [int(x) for x in args.concurrency.split(",")]
        for c in levels:
            n = n_items(c, args.rounds)
            rows.append(("openai SDK, asyncio.gather + semaphore", c, n, run_openai(url, n, c)))
            rows.append(("chorus batch, local engine", c, n, run_chorus(job, tmp, n, c, 0)))
            print(rows[-2], rows[-1], file=sys.stderr)
        port = free_port()
        head = stack.enter_context(session(
            [str(Path(sys.executable).parent / "ray"), "start", "--head", f"--port={port}",
             "--num-cpus=2", "--block", "--node-ip-address=127.0.0.1",
             "--include-dashboard=false", f"--temp-dir={tmp / 'ray'}"], tmp / "head.log", env))
        deadline = time.monotonic() + 300
        while True:
            assert head.poll() is None, (tmp / "head.log").read_text()[-2000:]
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            assert time.monotonic() < deadline, "ray head did not start"
            time.sleep(0.2)
        ray = ray_session(f"127.0.0.1:{port}")
        for workers in (1, 2):
            for c in levels:
                if c * workers > 1024:
                    continue
                n = n_items(c * workers, args.rounds)
                rows.append((f"chorus batch, Ray, {workers} worker{'s' * (workers > 1)}",
                             c * workers, n, run_chorus(job, tmp, n, c, workers)))
                print(rows[-1], file=sys.stderr)
        ray.shutdown()
    ideal = 1000 / args.delay_ms
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "batch.json").write_text(json.dumps({
        "machine": machine(), "command": " ".join(sys.argv), "delay_ms": args.delay_ms,
        "load_average": os.getloadavg(),
        "rows": [{"runner": name, "in_flight": c, "items": n, **r} for name, c, n, r in rows],
    }, indent=1) + "\n")
    print(f"machine: {machine()}")
    print(f"command: {' '.join(sys.argv)}")
    print(f"upstream: benchmarks/mock_upstream.py, {args.delay_ms:g} ms a call "
          f"(at most {ideal:g} items/s per call in flight)")
    print()
    print("| runner | calls in flight | items | answered/s | of ideal | CPU ms per item | "
          "failed |")
    print("|---|---|---|---|---|---|---|")
    for name, c, n, r in rows:
        print(f"| {name} | {c} | {n} | {r['items_s']:.1f} | "
              f"{r['items_s'] / (c * ideal):.0%} | {r['cpu_ms']:.2f} | {r['failed']:g} |")


def _run_in_namespace() -> None:
    if os.environ.get("BENCH_BATCH_NS") == "1":
        return
    unshare = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]
    env = {**os.environ, "BENCH_BATCH_NS": "1"}
    sys.exit(subprocess.run([*unshare, sys.executable, *sys.argv], env=env).returncode)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--delay-ms", type=float, default=200.0)
    ap.add_argument("--concurrency", default="1,8,32,128,512",
                    help="calls in flight (per Ray worker for the Ray rows)")
    ap.add_argument("--rounds", type=int, default=8,
                    help="items = concurrency x rounds (40 to 4096)")
    parsed = ap.parse_args()
    _run_in_namespace()
    main(parsed)
