"""The upstream-fault scenarios of the fault suite, timed: each against the baseline
(fallback over retry(3) of the primary, one fallback model) through a real ``chorus serve``
process, asked with the official ``openai`` SDK; a fault server on 127.0.0.1 fails on
purpose (tests/faults/fault_server.py). Prints the table for BENCHMARKS.md and writes
benchmarks/results/failover.json.

    .venv/bin/python benchmarks/bench_failover.py [--rounds 5]

Limits are the suite's shortened ones (tests/faults/scenarios.py: 2 s transport timeout,
1 s to the first token, 1 s between pieces, an 8 s caller deadline), so a time says how
many of those limits a scenario waits out, and what chorus adds around them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from _machine import machine  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.faults.fault_server import ANSWER, FaultServer  # noqa: E402
from tests.faults.scenarios import FLAKY, SCENARIOS, Outcome, ask, client, config  # noqa: E402


def serve(config_path: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    chorus = Path(sys.executable).parent / "chorus"
    proc = subprocess.Popen([str(chorus), "serve", "-c", str(config_path), "--host",
                             "127.0.0.1", "--port", str(port)],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{url}/health", timeout=1).close()
            return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"chorus serve did not start; see {log}")


def describe(o: Outcome) -> str:
    if o.error:
        return o.error
    return f"{o.finish}, full answer from {o.model}" if o.text == ANSWER else \
        f"{o.finish}, {o.text!r} from {o.model}"


def main(rounds: int) -> None:
    rows: list[dict[str, object]] = []
    with FaultServer() as fs, tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "faults.yaml"
        cfg.write_text(config(fs.base_url))
        proc, url = serve(cfg, Path(tmp) / "serve.log")
        try:
            c = client(url)
            for s in SCENARIOS:
                outcomes = []
                for _ in range(rounds):
                    fs.calls.clear()  # "once" faults fail again each round
                    outcomes.append(ask(c, s))
                times = [o.seconds for o in outcomes]
                rows.append({"scenario": s.name, "expect": s.expect,
                             "outcome": describe(outcomes[-1]),
                             "held": all(o.holds(s) for o in outcomes),
                             "median_s": statistics.median(times), "max_s": max(times)})
            # A silent primary with only its 30 s transport timeout: the caller's own 3 s
            # (the SDK sends it) is shared out, so the fallback still answers in time.
            quick, msg = c.with_options(timeout=3.0), [{"role": "user", "content": "Hi"}]
            times, held = [], True
            for _ in range(rounds):
                t0 = time.perf_counter()
                r = quick.chat.completions.create(model="s-deadline", messages=msg)
                times.append(time.perf_counter() - t0)
                held = held and r.model == "fb" and times[-1] < 3.0
            rows.append({"scenario": "silent primary (30 s timeout), caller's deadline 3 s",
                         "expect": "half the caller's deadline each, fallback answers",
                         "outcome": f"{r.choices[0].finish_reason}, full answer from {r.model}"
                         if r.choices[0].message.content == ANSWER else "wrong answer",
                         "held": held, "median_s": statistics.median(times),
                         "max_s": max(times)})
            fs.calls.clear()
            fs.down_until = time.monotonic() + 1.5
            flaky = []
            t0 = time.perf_counter()
            for _ in range(20):
                flaky.append(ask(c, FLAKY))
                time.sleep(0.12)
            wall = time.perf_counter() - t0
            by = [o.model for o in flaky]
            primary_calls = fs.count("flaky")
            rows.append({
                "scenario": "primary down 1.5 s under 20 requests",
                "expect": FLAKY.expect,
                "outcome": f"20/20 full answers: {by.count('fb')} from fb, "
                           f"{by.count('p-flaky')} from p-flaky (back from request "
                           f"{by.index('p-flaky') + 1 if 'p-flaky' in by else '-'}); "
                           f"{primary_calls} calls reached the primary",
                "held": all(o.text == ANSWER and o.finish == "stop" for o in flaky),
                "median_s": statistics.median(o.seconds for o in flaky),
                "max_s": max(o.seconds for o in flaky), "wall_s": wall})
        finally:
            proc.terminate()
            proc.wait(10)
    print(f"machine: {machine()}; {rounds} rounds per scenario\n")
    print("| scenario | chorus should | outcome | held | median s | max s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['scenario']} | {r['expect']} | {r['outcome']} | "
              f"{'yes' if r['held'] else 'NO'} | {r['median_s']:.3f} | {r['max_s']:.3f} |")
    out = ROOT / "benchmarks" / "results" / "failover.json"
    out.write_text(json.dumps({"machine": machine(), "rounds": rounds, "rows": rows},
                              indent=1) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    main(parser.parse_args().rounds)
