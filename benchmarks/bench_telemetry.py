"""What OpenTelemetry export costs: ``call()`` per call, and the gateway's latency at
100 requests/s, with telemetry off, exporting to a live OTLP receiver, and exporting to
a dead one (a port that takes connections and never answers). Measured side by side in
one run, rounds interleaved.

    .venv/bin/python benchmarks/bench_telemetry.py [--requests 1000] [--rounds 3]

``call()``: a scripted leaf, awaited in a loop; "today" is the body ``call()`` had
before the telemetry hook (core.model._guarded, the same code). Gateway: ``chorus serve``
(one worker) in front of benchmarks/mock_upstream.py, a fallback system over one
OpenAI-compatible model (two spans a request); the client is bench_gateway.py's open
loop at 100 requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine  # noqa: E402
from bench_gateway import free_port, paced, pct, process, request_bytes  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

SINK = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""
# Takes connections into its backlog and never reads them: a collector that hangs.
DEAD = """
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1024)
time.sleep(10**6)
"""


def call_overhead(calls: int, rounds: int, sink: int) -> dict[str, float]:
    """Microseconds per ``call()`` of a scripted leaf: today's body, off, on. With export
    on, the request path (the background thread held back during the loop) and the
    background work per call (turning the notes into spans, timed as one flush) apart."""
    from chorus import telemetry
    from chorus.core.model import _guarded, call
    from chorus.core.types import Request
    from chorus.providers.scripted import ScriptedModel
    from chorus.telemetry import _deferred

    model = ScriptedModel("m", default="Paris")
    request = Request.of("Capital of France?")

    async def loop(fn: object) -> float:
        f = fn  # type: ignore[assignment]
        for _ in range(200):
            await f(model, request)  # type: ignore[operator]
        t = time.perf_counter()
        for _ in range(calls):
            await f(model, request)  # type: ignore[operator]
        return (time.perf_counter() - t) / calls * 1e6

    got: dict[str, list[float]] = {"today": [], "off": [], "on": [], "background": []}
    # Room for every span of a round, so the background figure covers exporting them all.
    os.environ["OTEL_BSP_MAX_QUEUE_SIZE"] = str(2 * calls + 1000)
    tick = _deferred._TICK_S
    for _ in range(rounds):
        telemetry.disable()
        got["today"].append(asyncio.run(loop(_guarded)))
        got["off"].append(asyncio.run(loop(call)))
        _deferred._TICK_S = 3600.0  # the thread waits; the notes pile up (bounded deque)
        telemetry.enable(endpoint=f"http://127.0.0.1:{sink}", metrics=True)
        telemetry.flush()
        got["on"].append(asyncio.run(loop(call)))
        t = time.perf_counter()
        telemetry.flush(30.0)
        got["background"].append((time.perf_counter() - t) / (calls + 200) * 1e6)
        telemetry.disable()
        _deferred._TICK_S = tick
    return {k: statistics.median(v) for k, v in got.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--requests", type=int, default=1000, help="gateway requests per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=10000, help="call()s per round")
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="bench_telemetry_"))
    sink, dead, up = free_port(), free_port(), free_port()
    (tmp / "sink.py").write_text(SINK)
    (tmp / "dead.py").write_text(DEAD)
    chorus = str(ROOT / ".venv" / "bin" / "chorus")
    cfg = tmp / "chorus.yaml"
    cfg.write_text(f"models:\n  mock:\n    provider: openai\n    model: mock\n"
                   f"    base_url: http://127.0.0.1:{up}/v1\n    api_key: none\n"
                   f"systems:\n  pair: {{kind: fallback, models: [mock]}}\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    on = {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_SERVICE_NAME": "bench"}
    setups = {
        "off": {"OTEL_SDK_DISABLED": "true"},
        "export on (live receiver)": {**on, "OTEL_EXPORTER_OTLP_ENDPOINT":
                                      f"http://127.0.0.1:{sink}"},
        "export on (dead collector)": {**on, "OTEL_EXPORTER_OTLP_ENDPOINT":
                                       f"http://127.0.0.1:{dead}"},
    }
    lat: dict[str, list[float]] = {k: [] for k in setups}
    medians: dict[str, list[tuple[float, float]]] = {k: [] for k in setups}
    with process([sys.executable, str(tmp / "sink.py"), str(sink)], sink, tmp / "sink.log"), \
            process([sys.executable, str(tmp / "dead.py"), str(dead)], dead, tmp / "dead.log"), \
            process([sys.executable, str(ROOT / "benchmarks" / "mock_upstream.py"), "--port",
                     str(up)], up, tmp / "upstream.log"):
        micro = call_overhead(args.calls, args.rounds, sink)
        for r in range(args.rounds):
            for name, env in setups.items():
                gw = free_port()
                os.environ.clear()
                os.environ.update({**base, **env})
                try:
                    with process([chorus, "serve", "-c", str(cfg), "--port", str(gw)], gw,
                                 tmp / f"gw{r}.log"):
                        got = asyncio.run(paced(gw, request_bytes(gw, "pair"), 100.0,
                                                args.requests))
                finally:
                    os.environ.clear()
                    os.environ.update(base)
                lat[name] += got
                medians[name].append((pct(got, 0.5) * 1e3, pct(got, 0.99) * 1e3))
    subprocess.run(["rm", "-rf", str(tmp)], check=False)

    load = {"before": load_before, "after": os.getloadavg()[0]}
    cmd = "python benchmarks/bench_telemetry.py " + " ".join(sys.argv[1:])
    print(f"\n`{cmd.strip()}` on {machine()}; load average {load['before']:.2f} before, "
          f"{load['after']:.2f} after\n")
    print("| call() of a scripted leaf | us per call |")
    print("|---|---|")
    for k, label in (("today", "before the hook (today's body)"), ("off", "telemetry off"),
                     ("on", "export on: the request path"),
                     ("background", "export on: background work per call (span, metrics, "
                                    "batch export)")):
        print(f"| {label} | {micro[k]:.2f} |")
    print(f"\nadded to the request path by export: {micro['on'] - micro['today']:.2f} us per "
          f"call; by the hook when off: {micro['off'] - micro['today']:.2f} us\n")
    print("| gateway at 100 rps, fallback over one model | p50 ms | p99 ms | added p50 ms "
          "| added p99 ms |")
    print("|---|---|---|---|---|")
    off50, off99 = pct(lat["off"], 0.5) * 1e3, pct(lat["off"], 0.99) * 1e3
    summary: dict[str, dict[str, float]] = {}
    for name, values in lat.items():
        p50, p99 = pct(values, 0.5) * 1e3, pct(values, 0.99) * 1e3
        summary[name] = {"p50_ms": p50, "p99_ms": p99, "added_p50_ms": p50 - off50,
                         "added_p99_ms": p99 - off99, "requests": len(values)}
        print(f"| {name} | {p50:.2f} | {p99:.2f} | {p50 - off50:+.2f} | {p99 - off99:+.2f} |")
    print("\nper round (p50, p99 ms): " + "; ".join(
        f"{k}: " + ", ".join(f"({a:.2f}, {b:.2f})" for a, b in v) for k, v in medians.items()))
    out = ROOT / "benchmarks" / "results" / "telemetry.json"
    out.write_text(json.dumps({"command": cmd.strip(), "machine": machine(), "load": load,
                               "call_us": micro, "gateway": summary,
                               "rounds": medians}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
