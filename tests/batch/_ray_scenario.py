"""A real Ray cluster on 127.0.0.1, run inside a network namespace of its own (the test
starts this script under ``unshare -n``: Ray never takes 127.0.0.1 as a node's address
while the machine has another interface).

It starts a Redis, a mock OpenAI-compatible upstream, a Ray head and one more Ray node
(each with one CPU), then runs ``chorus batch --engine ray``: a budget and a rate limit
shared by both workers through Redis, then 2,000 items while the second node is killed
with SIGKILL mid-run; and ``chorus bench --engine ray`` on the same cluster. What it saw
goes to ``WORK/result.json`` for the test to judge.

    unshare -n python tests/batch/_ray_scenario.py WORK
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CHORUS = [sys.executable, "-m", "chorus.cli.main"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: object, what: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not ready after {timeout_s:g}s")
        time.sleep(0.1)


@contextlib.contextmanager
def process(cmd: list[str], log: Path, **kw: object) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, **kw)  # type: ignore[call-overload]
    try:
        yield proc
    finally:
        group = bool(kw.get("start_new_session"))
        for sig in (signal.SIGTERM, signal.SIGKILL):  # a Ray node: its whole session
            with contextlib.suppress(ProcessLookupError):
                if group:
                    os.killpg(proc.pid, sig)
                else:
                    proc.send_signal(sig)
            try:
                proc.wait(15)
                if not group:
                    break
                time.sleep(0.5)  # let the node's other processes exit too
            except subprocess.TimeoutExpired:
                continue


def lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def main(work: Path) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0",
           # Notice a dead node within seconds, not the default half minute.
           "RAY_health_check_period_ms": "500", "RAY_health_check_timeout_ms": "500",
           "RAY_health_check_failure_threshold": "4", "PYTHONPATH": str(ROOT / "src")}
    result: dict[str, object] = {}
    redis_port, head_port = free_port(), free_port()
    with contextlib.ExitStack() as stack:
        stack.enter_context(process(
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(work)], work / "redis.log"))
        up_log = work / "upstream.log"
        stack.enter_context(process(
            [sys.executable, str(ROOT / "benchmarks" / "mock_upstream.py"), "--port", "0",
             "--delay-ms", "50", "--echo"], up_log))
        wait_for(lambda: up_log.read_text().strip().isdigit(), "mock upstream")
        up_port = int(up_log.read_text())
        # Each node in a session of its own, stopped by signalling that session: `ray stop`
        # would stop every Ray process on the machine, not only this cluster's.
        ray = str(BIN / "ray")
        head = stack.enter_context(process(
            [ray, "start", "--head", f"--port={head_port}", "--num-cpus=1", "--block",
             "--node-ip-address=127.0.0.1", "--include-dashboard=false",
             f"--temp-dir={work / 'ray'}"], work / "head.log", env=env, start_new_session=True))

        def head_up() -> bool:
            if head.poll() is not None:
                raise SystemExit(f"ray head exited: {(work / 'head.log').read_text()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", head_port), timeout=0.5):
                return True
            return False

        wait_for(head_up, "ray head", 300)
        address = f"127.0.0.1:{head_port}"
        node = stack.enter_context(process(
            [ray, "start", f"--address={address}", "--num-cpus=1", "--block",
             "--node-ip-address=127.0.0.1"], work / "node2.log", env=env,
            start_new_session=True))
        cfg = work / "cfg.yaml"
        # The mock answers 5 prompt + 1 output tokens: $0.006 a call at $1000/M; a call
        # reserves its prompt (~3 tokens) + max_tokens 5, $0.008, before it is made.
        cfg.write_text(f"""\
stores:
  shared: {{kind: redis, url: "redis://127.0.0.1:{redis_port}/0"}}
models:
  up:
    provider: openai
    base_url: http://127.0.0.1:{up_port}/v1
    model: mock
    api_key: none
    price: {{input: 1000, output: 1000}}
    params: {{max_tokens: 5}}
systems:
  job: up
  # 20 calls a second with a burst of 20, for the whole cluster (the bucket is in Redis).
  paced: {{kind: ratelimit, inner: up, requests_per_minute: 1200, burst_s: 1,
           store: shared}}
""")
        # Set in the driver's environment only: the workers get it from the driver.
        greet = work / "greet.yaml"
        greet.write_text('systems:\n  greet: {provider: scripted, default: "${CHORUS_GREETING}"}\n')
        for name, n in (("budget", 400), ("kill", 2000), ("paced", 100), ("greet", 20)):
            with (work / f"{name}.jsonl").open("w") as f:
                for i in range(n):
                    f.write(json.dumps({"id": f"item-{i}", "prompt": f"question {i}"}) + "\n")
        with (work / "bench.jsonl").open("w") as f:  # every other reference is right
            for i in range(200):
                right = f"echo: question {i}" if i % 2 == 0 else "something else"
                f.write(json.dumps({"id": f"q{i}", "prompt": f"question {i}",
                                    "reference": right}) + "\n")

        def batch(name: str, *extra: str, system: str = "job", config: Path = cfg
                  ) -> list[str]:
            return [*CHORUS, "batch", "-c", str(config), "-s", system, "--input",
                    str(work / f"{name}.jsonl"), "--output", str(work / f"{name}.out.jsonl"),
                    "--engine", "ray", "--address", address, "--workers", "2",
                    "--concurrency", "8", *extra]

        t0 = time.monotonic()
        run = subprocess.run(batch("budget", "--budget", "1.0", "--store", "shared"),
                             env=env, capture_output=True, text=True, timeout=600)
        result["budget"] = {"rc": run.returncode, "stdout": run.stdout,
                            "stderr": run.stderr[-3000:], "s": time.monotonic() - t0}
        keys = subprocess.run(["redis-cli", "-p", str(redis_port), "--scan", "--pattern",
                               "*budget:batch-*:usd"], capture_output=True, text=True)
        result["budget_keys"] = {k: subprocess.run(
            ["redis-cli", "-p", str(redis_port), "get", k], capture_output=True,
            text=True).stdout.strip() for k in keys.stdout.split()}

        run = subprocess.run(batch("paced", system="paced"), env=env, capture_output=True,
                             text=True, timeout=600)
        result["paced"] = {"rc": run.returncode, "stdout": run.stdout,
                           "stderr": run.stderr[-3000:]}

        run = subprocess.run(batch("greet", system="greet", config=greet), timeout=600,
                             env={**env, "CHORUS_GREETING": "hello from the driver"},
                             capture_output=True, text=True)
        result["greet"] = {"rc": run.returncode, "stderr": run.stderr[-3000:]}

        t0 = time.monotonic()
        run = subprocess.run(
            [*CHORUS, "bench", "-c", str(cfg), "--systems", "job,up", "--dataset",
             str(work / "bench.jsonl"), "--engine", "ray", "--address", address, "--workers",
             "2", "--out", str(work / "bench"), "--json", str(work / "bench.json"),
             "--no-plot"], env=env, capture_output=True, text=True, timeout=600)
        result["bench"] = {"rc": run.returncode, "stderr": run.stderr[-3000:],
                           "s": time.monotonic() - t0}

        out = work / "kill.out.jsonl"
        t0 = time.monotonic()
        with (work / "kill.log").open("w") as log:
            proc = subprocess.Popen(batch("kill"), env=env, stdout=log, stderr=log)
        try:
            wait_for(lambda: lines(out) >= 100 or proc.poll() is not None, "kill run", 300)
            result["lines_at_kill"] = lines(out)
            os.killpg(node.pid, signal.SIGKILL)  # the second node: its raylet and workers
            proc.wait(600)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
        result["kill"] = {"rc": proc.returncode, "log": (work / "kill.log").read_text()[-3000:],
                          "s": time.monotonic() - t0}
    (work / "result.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
