"""Generation speed of the bundled models under different llama.cpp builds, side by side.

    .venv/bin/python benchmarks/bench_llama_build.py \
        --build portable=.venv/bin/python --build native=/tmp/venv-native/bin/python \
        [--build NAME=PYTHON ...] [--rounds 3] [--max-tokens 128] [--threads 1]

Each build is a Python environment with its own llama-cpp-python (scripts/build_llama.sh
makes one: ``CHORUS_LLAMA_CMAKE_ARGS=... bash scripts/build_llama.sh VENV/bin/python``).
Every round starts one child process per build, in turn, so the builds see about the same
load; the child loads each bundled model, warms up once, generates ``--max-tokens`` tokens
at temperature 0 twice and reports tok/s (wall) and tok per CPU-second. A child that dies
on a signal (SIGSEGV, SIGILL) is reported as such: that is the build's result on this CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

from chorus.providers._bundled import BUILTINS  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
STORY = "Write a long story about a dragon who learns to bake bread."
OPENING = "Once upon a time, in a small village by the sea, there lived"

# Runs in the build's own interpreter: llama_cpp and the standard library only.
WORKER = r"""
import json, sys, time
import llama_cpp
spec = json.loads(sys.argv[1])
out = {"system_info": llama_cpp.llama_print_system_info().decode().strip(), "models": {}}
for name, path, mode in spec["models"]:
    llm = llama_cpp.Llama(model_path=path, n_ctx=1024, n_threads=spec["threads"],
                          n_threads_batch=spec["threads"], verbose=False, seed=42)
    settings = {"max_tokens": spec["max_tokens"], "temperature": 0, "seed": 42}
    def gen():
        if mode == "chat":
            r = llm.create_chat_completion([{"role": "user", "content": spec["story"]}], **settings)
            return r["usage"]["completion_tokens"], r["choices"][0]["message"]["content"]
        r = llm.create_completion(spec["opening"], **settings)
        return r["usage"]["completion_tokens"], r["choices"][0]["text"]
    gen()
    runs = []
    for _ in range(2):
        t, c = time.perf_counter(), time.process_time()
        n, text = gen()
        runs.append((n / (time.perf_counter() - t), n / (time.process_time() - c), n, text))
    out["models"][name] = {"tok_s": [r[0] for r in runs], "tok_cpu_s": [r[1] for r in runs],
                           "tokens": runs[-1][2], "text": runs[-1][3]}
    del llm
print(json.dumps(out))
"""


def run_child(python: str, spec: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run([python, "-c", WORKER, json.dumps(spec)], capture_output=True,
                          text=True, timeout=900)
    if proc.returncode < 0:
        sig = signal.Signals(-proc.returncode).name
        return {"crashed": sig, "stderr": proc.stderr[-400:]}
    if proc.returncode != 0:
        return {"crashed": f"exit {proc.returncode}", "stderr": proc.stderr[-400:]}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", action="append", required=True, metavar="NAME=PYTHON")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    builds = dict(b.split("=", 1) for b in args.build)
    spec = {
        "models": [[name, str(b.locate(True)), b.mode] for name, b in BUILTINS.items()],
        "threads": args.threads, "max_tokens": args.max_tokens,
        "story": STORY, "opening": OPENING,
    }
    command = " ".join([Path(sys.executable).name, *sys.argv])
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f}")
    print(f"command: {command}\n")
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in builds}
    for i in range(args.rounds):
        for name, python in builds.items():
            rounds[name].append(run_child(python, spec))
            last = rounds[name][-1]
            print(f"round {i + 1} {name}: "
                  + (last["crashed"] if "crashed" in last else ", ".join(
                      f"{m} {statistics.median(v['tok_s']):.1f} tok/s"
                      for m, v in last["models"].items())), flush=True)
    results: dict[str, Any] = {}
    for name, runs in rounds.items():
        ok = [r for r in runs if "crashed" not in r]
        crashed = [r["crashed"] for r in runs if "crashed" in r]
        entry: dict[str, Any] = {"python": builds[name], "crashed": crashed}
        if ok:
            entry["system_info"] = ok[0]["system_info"]
            entry["models"] = {
                m: {
                    "tok_s": statistics.median(x for r in ok for x in r["models"][m]["tok_s"]),
                    "tok_cpu_s": statistics.median(
                        x for r in ok for x in r["models"][m]["tok_cpu_s"]),
                    "text": ok[-1]["models"][m]["text"][:80],
                }
                for m in ok[0]["models"]
            }
        else:
            entry["stderr"] = runs[-1].get("stderr", "")
        results[name] = entry
    print("\n| build | SmolLM2 tok/s | tok/CPU-s | Gemma tok/s | tok/CPU-s | crashes |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        cells = []
        for m in BUILTINS:
            got = r.get("models", {}).get(m)
            cells += [f"{got['tok_s']:.1f}", f"{got['tok_cpu_s']:.1f}"] if got else ["-", "-"]
        print(f"| {name} | {' | '.join(cells)} | "
              f"{len(r['crashed'])}/{args.rounds} {' '.join(sorted(set(r['crashed'])))} |")
    for name, r in results.items():
        print(f"{name}: {r.get('system_info', r.get('stderr', '')[-200:])}")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    out = ROOT / "benchmarks" / "results" / "llama_build.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), "command": command, "rounds": args.rounds,
                               "max_tokens": args.max_tokens, "threads": args.threads,
                               "results": results}, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
