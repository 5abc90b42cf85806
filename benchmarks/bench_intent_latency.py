"""Where one intent decision's time goes: the query's word pieces (tokenizers), MiniLM's
forward pass in numpy and the head's products (probabilities and abstention score), each
on one BLAS thread and at the BLAS library's default thread count, and the whole
``IntentClassifier.classify`` now (a short query encoded in the event loop's thread, the
head on one BLAS thread) against the same as it was (the encode handed to a new thread,
the head at the default thread count), all in one process, the variants taking turns on
blocks of 20 queries so they share the machine's load.

Every query is a CLINC150 test utterance (fixed-seed sample) embedded afresh (the
embedder's memo is cleared before each call). The head is one saved by
``benchmarks/bench_clinc150.py`` (10 examples per intent, frozen MiniLM) unless --head
names another.

    .venv/bin/python benchmarks/bench_intent_latency.py [--queries 300] [--head DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

from chorus.core.types import Request  # noqa: E402
from chorus.embeddings import Vectors  # noqa: E402
from chorus.embeddings.local import MiniLMEmbedder, _load, model_folder  # noqa: E402
from chorus.embeddings.threads import one_blas_thread  # noqa: E402
from chorus.routing.intent import IntentClassifier, IntentHead  # noqa: E402

HERE = Path(__file__).resolve().parent
BLOCK = 20
CACHE = Path(os.environ.get("CHORUS_BENCH_CACHE", "/tmp/chorus-bench-cache"))


class ThreadPerCall(MiniLMEmbedder):
    """The dispatch chorus used before: a new daemon thread for every encode."""

    async def _embed(self, texts: Sequence[str]) -> Vectors:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Vectors] = loop.create_future()

        def work() -> None:
            rows = self._encode(list(texts))
            loop.call_soon_threadsafe(future.set_result, rows)

        threading.Thread(target=work, daemon=True).start()
        return await future


def classify_before(head: IntentHead, embedder: MiniLMEmbedder) -> Callable[[str], Any]:
    """``IntentClassifier.classify`` as it was: the head's products at the BLAS library's
    default thread count."""

    async def classify(q: str) -> tuple[str, float]:
        x = await embedder.embed([q])
        ps = head.proba(x)
        return head.labels[int(ps[0].argmax())], float(head.score(x, ps)[0])

    return classify


def load_average() -> str:
    return " / ".join(Path("/proc/loadavg").read_text().split()[:3])


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(HERE.parents[1] / "shared" / "data"))
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--head", default=str(CACHE / "clinc150-intent-10"))
    parser.add_argument("--out", default=str(HERE / "results" / "intent_latency.json"))
    args = parser.parse_args()
    if not (Path(args.head) / "intent.json").is_file():
        sys.exit(f"no saved intent head in {args.head}: run benchmarks/bench_clinc150.py "
                 "first, or pass --head DIR (a folder `chorus router fit --intents` wrote)")
    data = json.loads((Path(args.data) / "clinc150" / "data_full.json").read_text("utf-8"))
    queries = [t for t, _ in random.Random(3).sample(data["test"], args.queries)]
    head = IntentHead.load(args.head)
    encoder, _ = _load(model_folder(), "numpy")
    now = MiniLMEmbedder(backend="numpy")
    per_call = ThreadPerCall(backend="numpy")
    before = classify_before(head, per_call)
    x0 = encoder.encode(["what time is it"])

    def head_one_thread() -> None:
        with one_blas_thread():
            head.score(x0, head.proba(x0))

    def forward_one_thread(ids: list[int]) -> None:
        with one_blas_thread():
            encoder._forward([ids])

    classifier = IntentClassifier(head, now)

    async def decide_now(q: str) -> None:
        now._memo.clear()
        await classifier.classify(Request.of(q))

    async def decide_before(q: str) -> None:
        per_call._memo.clear()
        await before(q)

    async def timed(fn: Callable[[], Any]) -> float:
        t = time.perf_counter()
        out = fn()
        if asyncio.iscoroutine(out):
            await out
        return (time.perf_counter() - t) * 1000

    # Each variant on a block of BLOCK queries, then the next variant on the same block:
    # a call at the BLAS library's default thread count leaves its threads spinning a
    # while after it returns, which slows whatever runs next, so variants are not
    # interleaved query by query.
    variants: dict[str, Callable[[str, list[int]], Any]] = {
        "tokenize": lambda q, ids: encoder.tokenizer.encode(q),
        "forward, one BLAS thread": lambda q, ids: forward_one_thread(ids),
        "forward, BLAS default threads": lambda q, ids: encoder._forward([ids]),
        "head, one BLAS thread": lambda q, ids: head_one_thread(),
        "head, BLAS default threads": lambda q, ids: head.score(x0, head.proba(x0)),
        "decision, now (short query encoded in the loop's thread, head on one BLAS "
        "thread)": lambda q, ids: decide_now(q),
        "decision, before (encode on a new thread, head at default BLAS threads)":
            lambda q, ids: decide_before(q),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for q in ("hello there", "what is my balance"):  # load the model, warm up
        await decide_now(q)
        await decide_before(q)
    load_before = load_average()
    ids_of = {q: encoder.tokenizer.encode(q).ids for q in queries}
    tokens = [len(ids) for ids in ids_of.values()]
    for start in range(0, len(queries), BLOCK):
        block = queries[start:start + BLOCK]
        for name, fn in variants.items():
            for q in block:
                times[name].append(await timed(lambda: fn(q, ids_of[q])))  # noqa: B023
    after = load_average()
    cmd = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    env = {k: os.environ.get(k, "unset")
           for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    out: dict[str, Any] = {"command": cmd, "machine": machine(), "queries": len(queries),
                           "word_pieces_median": statistics.median(tokens),
                           "head": args.head, "load_average_before": load_before,
                           "load_average_after": after, "env": env, "ms": {}}
    print(f"Command: `{cmd}`  \nMachine: {machine()}  \n{len(queries)} queries "
          f"(median {statistics.median(tokens)} word pieces), load average {load_before} before, "
          f"{after} after; {env}\n")
    print("| step | p50 ms | p90 ms |\n|---|---|---|")
    for name, ts in times.items():
        p50, p90 = statistics.median(ts), statistics.quantiles(ts, n=10)[-1]
        out["ms"][name] = {"p50": round(p50, 3), "p90": round(p90, 3)}
        print(f"| {name} | {p50:.3f} | {p90:.3f} |")
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n", "utf-8")


if __name__ == "__main__":
    asyncio.run(main())
