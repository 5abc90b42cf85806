"""Cache benchmarks: (a) the cost of an exact-cache hit per backend, (b) semantic lookup
latency with 10,000 cached entries, (c) money saved on a recorded run of 200 prompts.

    .venv/bin/python benchmarks/bench_cache.py [--hits 2000] [--entries 10000] [--no-minilm]

(a) times ``Cache.complete`` on a warm entry (memory, SQLite in a temp file, Redis on a
redis-server started here on 127.0.0.1) against calling the ScriptedModel directly.
(b) fills a SemanticCache with 10,000 entries (``SemanticCache.add``) through a fake
embedder that returns seeded random unit vectors of dimension 384, so the lookup (store
read, 10,000 x 384 matrix product, entry read), not the model, is measured; each query is a
cached vector plus noise, so it hits through the similarity search, not the exact-prompt
shortcut.
(c) builds 200 prompts from SST-2 dev sentences (read from /work/shared/data, not copied):
50 % new sentences, 30 % exact repeats of an earlier prompt, 20 % paraphrases of an earlier
one. A paraphrase is a light deterministic rewrite: capitalise the first letter, prepend the
filler "Honestly," and join the tokeniser's spaces before punctuation. They go through an
uncached model, an exact cache and (when MiniLM loads) a semantic cache at threshold 0.9;
the model is a ScriptedModel priced like gpt-4o-mini ($0.15 / $0.60 per million tokens)
with word-count usage. A "wrong hit" is a semantic hit on a different sentence.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

from chorus.core.model import Model  # noqa: E402
from chorus.core.pricing import Price  # noqa: E402
from chorus.core.types import Request  # noqa: E402
from chorus.embeddings import Embedder, Vectors  # noqa: E402
from chorus.policies.cache import Cache  # noqa: E402
from chorus.policies.semantic_cache import SemanticCache  # noqa: E402
from chorus.providers.scripted import ScriptedModel  # noqa: E402
from chorus.stores import MemoryStore, RedisStore, SQLiteStore, Store  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SST2 = Path("/work/shared/data/sst2/stsa.binary.dev")
MINI = Price(0.15, 0.60)
DIM = 384
REPLY = ("The review reads as clearly negative overall: the writer dislikes the pacing, "
         "the script and the acting, and would not recommend the film.")


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@contextlib.contextmanager
def redis_server() -> Iterator[str | None]:
    exe = shutil.which("redis-server")
    if exe is None:
        yield None
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no", "--dir", tmp],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                with contextlib.suppress(OSError), socket.create_connection(
                        ("127.0.0.1", port), timeout=0.5):
                    break
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def stores(tmp: Path, url: str | None) -> dict[str, Store]:
    out: dict[str, Store] = {"memory": MemoryStore(), "sqlite": SQLiteStore(tmp / "bench.db")}
    if url:
        out["redis"] = RedisStore(url, namespace=f"bench{time.time_ns()}:")
    return out


# -- (a) exact hit cost ------------------------------------------------------------------------


async def time_calls(model: Model, request: Request, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        await model.complete(request)
        out.append((time.perf_counter() - t) * 1e6)
    return out


async def exact_hits(backends: dict[str, Store], n: int) -> dict[str, Any]:
    request = Request.of("What is the capital of France?")
    inner = ScriptedModel("mini", default=REPLY, price=MINI)
    results: dict[str, Any] = {}
    base = await time_calls(inner, request, n)
    results["no cache (ScriptedModel call)"] = {"p50_us": pct(base, 50), "p99_us": pct(base, 99)}
    for name, store in backends.items():
        cache = Cache(f"c-{name}", ScriptedModel("mini", default=REPLY, price=MINI), store)
        await cache.complete(request)
        times = await time_calls(cache, request, n)
        results[name] = {"p50_us": pct(times, 50), "p99_us": pct(times, 99)}
    return results


# -- (b) semantic lookup at 10,000 entries -----------------------------------------------------


class RandomVectors(Embedder):
    """Seeded random unit vectors, drawn once: "entry:<i>" is row i, "near:<i>" is row i plus
    a little noise (a paraphrase that must hit through the similarity search)."""

    def __init__(self, n: int) -> None:
        super().__init__("random", memo_size=100)
        rng = np.random.default_rng(0)
        self.rows = self._unit(rng.standard_normal((n, DIM)).astype(np.float32))
        self.near = self._unit(self.rows + 0.02 * rng.standard_normal((n, DIM)).astype(
            np.float32))

    @staticmethod
    def _unit(m: Vectors) -> Vectors:
        return (m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float32)

    async def _embed(self, texts: Sequence[str]) -> Vectors:
        picked = []
        for t in texts:
            kind, _, i = t.partition(":")
            picked.append((self.near if kind == "near" else self.rows)[int(i) % len(self.rows)])
        return np.stack(picked)


async def semantic_lookups(backends: dict[str, Store], entries: int, queries: int
                           ) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, store in backends.items():
        inner = ScriptedModel("mini", default="x", price=MINI)
        vectors = RandomVectors(entries)
        cache = SemanticCache(f"s-{name}", inner, vectors, store, threshold=0.9)
        answer = await inner.complete(Request.of("x"))
        t = time.perf_counter()
        for i in range(entries):
            await cache.add(Request.of(f"entry:{i}"), answer)
        fill_s = time.perf_counter() - t
        rng = random.Random(0)
        times, hits = [], 0
        for _ in range(queries):
            q = Request.of(f"near:{rng.randrange(entries)}")
            t = time.perf_counter()
            out = await cache.complete(q)
            times.append((time.perf_counter() - t) * 1e6)
            hits += bool(out.trace and out.trace.attributes.get("hit"))
        row: dict[str, Any] = {"entries": entries, "queries": queries, "hits": hits,
                               "p50_us": pct(times, 50), "p99_us": pct(times, 99),
                               "fill_s": fill_s}
        if name != "memory":
            # A second process: its first lookup loads the 10,000 entries into its mirror.
            other = SemanticCache(f"s-{name}", inner, vectors, store, threshold=0.9)
            t = time.perf_counter()
            await other.complete(Request.of("near:1"))
            row["cold_mirror_load_s"] = time.perf_counter() - t
        results[name] = row
    return results


# -- (c) money saved on a recorded run ---------------------------------------------------------


def paraphrase(sentence: str) -> str:
    text = re.sub(r" ([.,!?;:'])", r"\1", sentence)
    return "Honestly, " + text[:1].upper() + text[1:]


def workload(n: int = 200, seed: int = 7) -> list[tuple[str, int, str]]:
    """(kind, sentence index, prompt) for n prompts: 50 % new, 30 % repeat, 20 % paraphrase."""
    lines = [ln.split(" ", 1)[1].strip() for ln in SST2.read_text().splitlines() if ln.strip()]
    rng = random.Random(seed)
    kinds = ["new"] * (n // 2) + ["repeat"] * (n * 3 // 10) + ["paraphrase"] * (n // 5)
    rest = kinds[1:]
    rng.shuffle(rest)
    kinds = [kinds[0], *rest]
    pool = rng.sample(range(len(lines)), n)
    seen: list[int] = []
    rewritten: set[int] = set()
    out = []
    for kind in kinds:
        if kind == "new" or not seen:
            idx = pool.pop()
            seen.append(idx)
            out.append(("new", idx, lines[idx]))
        elif kind == "repeat":
            idx = rng.choice(seen)
            out.append(("repeat", idx, lines[idx]))
        else:
            choices = [i for i in seen if i not in rewritten] or seen
            idx = rng.choice(choices)
            rewritten.add(idx)
            out.append(("paraphrase", idx, paraphrase(lines[idx])))
    return out


def ask(sentence: str) -> Request:
    return Request.of(f"Classify the sentiment of this movie review and say why: {sentence}")


async def money(minilm: bool) -> dict[str, Any]:
    prompts = workload()
    kinds = {k: sum(1 for p in prompts if p[0] == k) for k in ("new", "repeat", "paraphrase")}
    # the span's matched_prompt is cut to 200 characters
    by_text = {ask(text).prompt[:200]: idx for _, idx, text in prompts}
    systems: dict[str, Model] = {
        "uncached": ScriptedModel("mini", default=REPLY, price=MINI),
        "exact cache": Cache("exact", ScriptedModel("mini", default=REPLY, price=MINI)),
    }
    if minilm:
        from chorus.embeddings.local import MiniLMEmbedder

        systems["semantic cache (MiniLM, 0.9)"] = SemanticCache(
            "semantic", ScriptedModel("mini", default=REPLY, price=MINI), MiniLMEmbedder(),
            threshold=0.9)
    rows: dict[str, Any] = {}
    for name, system in systems.items():
        cost, hits, wrong = 0.0, {"repeat": 0, "paraphrase": 0, "new": 0}, 0
        t = time.perf_counter()
        for kind, idx, text in prompts:
            out = await system.complete(ask(text))
            cost += out.cost_usd
            attrs = out.trace.attributes if out.trace else {}
            if attrs.get("hit"):
                hits[kind] += 1
                matched = attrs.get("matched_prompt")
                if matched is not None and by_text.get(matched) != idx:
                    wrong += 1
        rows[name] = {"cost_usd": cost, "hits": sum(hits.values()), "hit_rate":
                      sum(hits.values()) / len(prompts), "hits_by_kind": hits,
                      "wrong_hits": wrong, "wall_s": time.perf_counter() - t}
    base = rows["uncached"]["cost_usd"]
    for row in rows.values():
        row["saved_pct"] = 100 * (1 - row["cost_usd"] / base) if base else 0.0
    return {"prompts": len(prompts), "kinds": kinds, "systems": rows}


def minilm_loads() -> bool:
    try:
        from chorus.embeddings.local import MiniLMEmbedder

        MiniLMEmbedder().load()
    except Exception as exc:  # noqa: BLE001 - any failure means: report without it
        print(f"(MiniLM did not load, semantic part of (c) skipped: {exc})")
        return False
    return True


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, redis_server() as url:
        backends = stores(Path(tmp), url)
        hits = await exact_hits(backends, args.hits)
        backends2 = stores(Path(tmp) / "s", url)
        sem = await semantic_lookups(backends2, args.entries, args.queries)
        for s in [*backends.values(), *backends2.values()]:
            await s.aclose()
    saved = await money(not args.no_minilm and minilm_loads())
    return {"exact_hit": hits, "semantic_lookup": sem, "money": saved}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hits", type=int, default=2000)
    ap.add_argument("--entries", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--no-minilm", action="store_true")
    ap.add_argument("--json", default=str(ROOT / "benchmarks/results/cache.json"))
    args = ap.parse_args()
    res = asyncio.run(run(args))
    print(f"machine: {machine()}")
    print(f"command: {' '.join(sys.argv)}")
    print()
    print(f"(a) exact-cache hit, {args.hits} calls on one warm entry")
    print()
    print("| backend | p50 | p99 |")
    print("|---|---|---|")
    for name, r in res["exact_hit"].items():
        print(f"| {name} | {r['p50_us']:.0f} µs | {r['p99_us']:.0f} µs |")
    print()
    print(f"(b) semantic lookup (a hit) with {args.entries:,} entries, dim {DIM}, fake embedder "
          "of random unit vectors (the lookup is measured, not a model)")
    print()
    print("| backend | p50 | p99 | hits | fill | cold mirror load (2nd process) |")
    print("|---|---|---|---|---|---|")
    for name, r in res["semantic_lookup"].items():
        cold = f"{r['cold_mirror_load_s']:.2f} s" if "cold_mirror_load_s" in r else "n/a"
        print(f"| {name} | {r['p50_us']:.0f} µs | {r['p99_us']:.0f} µs | "
              f"{r['hits']}/{r['queries']} | {r['fill_s']:.1f} s | {cold} |")
    m = res["money"]
    print()
    print(f"(c) {m['prompts']} SST-2 prompts ({m['kinds']['new']} new, {m['kinds']['repeat']} "
          f"exact repeats, {m['kinds']['paraphrase']} paraphrases), gpt-4o-mini prices, "
          "word-count usage")
    print()
    print("| system | cost | saved | hit rate | repeat hits | paraphrase hits | wrong hits |")
    print("|---|---|---|---|---|---|---|")
    for name, r in m["systems"].items():
        print(f"| {name} | ${r['cost_usd']:.6f} | {r['saved_pct']:.1f} % | "
              f"{100 * r['hit_rate']:.1f} % | {r['hits_by_kind']['repeat']} | "
              f"{r['hits_by_kind']['paraphrase']} | {r['wrong_hits']} |")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"machine": machine(), "command": " ".join(sys.argv),
                                           **res}, indent=2) + "\n")


if __name__ == "__main__":
    main()
