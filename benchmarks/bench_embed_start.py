"""MiniLM's start-up cost, its Ctrl-C latency, its throughput, and long texts.

    .venv/bin/python benchmarks/bench_embed_start.py [--before DIR] [--rounds 3] [--texts 1000]

Each figure is taken in fresh processes, the rows of one table interleaved round by round:
- start: a new Python process imports chorus, loads the bundled MiniLM and embeds one
  sentence (what every ``chorus run -s router`` pays), per backend (``numpy``, the default,
  and ``sentence-transformers`` on torch); with ``--before DIR`` (a checkout of an earlier
  commit, with its ``src/``) also that tree's default.
- ctrl-c: ``chorus run`` on a router over a scripted model whose classifier embeds with
  MiniLM; SIGINT ``--sigint-after`` seconds after start (while the embedder loads; a run
  that finished before is counted apart), then the time until the process has exited.
- throughput: texts per second embedding ``--texts`` CLINC150 utterances once loaded.
- long texts: the share of GSM8K questions + MMLU-Pro questions longer than the model's 256
  word pieces, and how a long text's vector changes when its tail changes (numpy embeds it
  whole; sentence-transformers drops the tail).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

START = """
import asyncio, time
t = time.perf_counter()
from chorus.embeddings.local import MiniLMEmbedder
e = MiniLMEmbedder({arg})
asyncio.run(e.embed(["What is the capital of France?"]))
print(time.perf_counter() - t)
"""

ROUTER = """
models:
  a: {{provider: scripted, default: "ok"}}
embedders:
  e: {{kind: minilm{backend}}}
systems:
  r:
    kind: router
    classifier: {{type: embedding, embedder: e, examples: {{x: ["hello there"]}}}}
    routes: {{x: a}}
    default: x
"""


def env_for(src: Path | None) -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    if src is not None:
        env["PYTHONPATH"] = str(src / "src")
    return env


def start_once(backend: str | None, src: Path | None) -> float:
    arg = "" if backend is None else f"backend={backend!r}"
    out = subprocess.run([sys.executable, "-c", START.format(arg=arg)], capture_output=True,
                         text=True, check=True, env=env_for(src))
    return float(out.stdout.strip().splitlines()[-1])


def ctrl_c_once(backend: str | None, src: Path | None, folder: Path,
                after: float) -> tuple[float, bool]:
    cfg = folder / f"r-{backend or 'default'}.yaml"
    cfg.write_text(ROUTER.format(backend="" if backend is None else f", backend: {backend}"))
    code = ("import sys; from chorus.cli.main import main; "
            f"sys.exit(main(['run', '-c', {str(cfg)!r}, '-s', 'r', 'hello']))")
    p = subprocess.Popen([sys.executable, "-c", code], env=env_for(src),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(after)
    finished = p.poll() is not None
    t0 = time.perf_counter()
    p.send_signal(signal.SIGINT)
    try:
        p.wait(timeout=120)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    return time.perf_counter() - t0, finished


def throughput(backend: str, n: int) -> float:
    code = f"""
import json, time, asyncio
from chorus.embeddings.local import MiniLMEmbedder
texts = [t for t, _ in json.load(open({str(DATA / 'clinc150' / 'data_full.json')!r}))['test']]
texts = texts[:{n}]
e = MiniLMEmbedder(backend={backend!r}, batch_size=32)
e.load()
asyncio.run(e.embed(['warm up']))
t = time.perf_counter()
asyncio.run(e.embed(texts))
print(len(texts) / (time.perf_counter() - t))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env_for(None))
    return float(out.stdout.strip().splitlines()[-1])


def long_texts() -> dict[str, float]:
    from chorus.embeddings._bert import BertEncoder
    from chorus.embeddings.local import model_folder

    enc = BertEncoder(model_folder())
    texts = [json.loads(line)["question"] for line in
             (DATA / "gsm8k" / "test.jsonl").read_text().splitlines() if line.strip()]
    with (DATA / "mmlu_pro" / "questions.jsonl").open() as f:
        texts += [json.loads(line)["question"] for line in f]
    pieces = [len(enc.tokenizer.encode(t).ids) for t in texts]
    longest = max(texts, key=len)
    base = longest + " " + "The first part sets the scene. " * 60
    a = enc.encode([base + "The question is about chemistry and acids."])
    b = enc.encode([base + "The question is about football and its rules."])
    return {"texts": len(texts), "over_256": sum(p > 256 for p in pieces) / len(texts),
            "tail_changes_cosine": float((a * b).sum())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before", type=Path, help="a checkout of an earlier commit to compare")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--texts", type=int, default=1000)
    ap.add_argument("--sigint-after", type=float, default=4.0)
    ap.add_argument("--no-throughput", action="store_true", help="skip throughput and long texts")
    args = ap.parse_args()
    rows: list[tuple[str, str | None, Path | None]] = [
        ("numpy (default now)", "numpy", None),
        ("sentence-transformers", "sentence-transformers", None),
    ]
    if args.before:
        rows.append((f"before ({args.before.name})", None, args.before))
    start: dict[str, list[float]] = {r[0]: [] for r in rows}
    stop: dict[str, list[float]] = {r[0]: [] for r in rows}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for label, backend, src in rows:
                start[label].append(start_once(backend, src))
                took, finished = ctrl_c_once(backend, src, Path(tmp), args.sigint_after)
                if not finished:
                    stop[label].append(took)
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}")
    print(f"{'embedder':<28} {'start s (median)':>17} {'Ctrl-C to exit s':>17} "
          f"(SIGINT {args.sigint_after:.1f} s after start)")
    for label, *_ in rows:
        s = statistics.median(start[label])
        c = f"{statistics.median(stop[label]):.2f}" if stop[label] else "finished first"
        print(f"{label:<28} {s:>17.2f} {c:>17}")
    if args.no_throughput:
        return
    for backend in ("numpy", "sentence-transformers"):
        print(f"throughput {backend}: {throughput(backend, args.texts):.0f} texts/s "
              f"({args.texts} CLINC150 utterances, batch 32)")
    lt = long_texts()
    print(f"long texts: {100 * lt['over_256']:.1f}% of {lt['texts']} GSM8K + MMLU-Pro "
          f"questions exceed 256 word pieces; two long texts that differ only past the "
          f"first 256 pieces: cosine {lt['tail_changes_cosine']:.4f} (1.0 when the tail "
          f"is dropped)")


if __name__ == "__main__":
    main()
