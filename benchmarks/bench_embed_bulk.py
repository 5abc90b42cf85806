"""How fast a table's prompts are embedded by the local MiniLM (what `chorus tune` and
`chorus router fit` wait on before their first step), side by side in one process:

- calls of 64 prompts (the old `embed_rows` batch: below BULK, so all on numpy);
- calls of 512 (the bulk path: one-window prompts on torch);
- the prompts longer than one window alone, on numpy and through torch's BERT window by
  window, with the cosine between the two.

    .venv/bin/python benchmarks/bench_embed_bulk.py --outcomes train.jsonl [--n 2048]

Each measurement uses its own slice of the table's prompts and a fresh embedder (an
embedder remembers the texts it has seen).
"""

from __future__ import annotations

import argparse
import asyncio
import time

import numpy as np

from chorus.embeddings.local import BULK, MiniLMEmbedder, _load, model_folder
from chorus.eval.outcomes import read_outcomes
from chorus.eval.routers import embed_rows


async def _rate(rows: list, batch: int) -> float:  # type: ignore[type-arg]
    embedder = MiniLMEmbedder()
    await embedder.embed(["warm up"])
    _load(model_folder(), "sentence-transformers")  # torch's start is not the point here
    started = time.perf_counter()
    await embed_rows(rows, embedder, None, batch=batch)
    return len(rows) / (time.perf_counter() - started)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--outcomes", required=True, help="an outcome table (JSONL)")
    ap.add_argument("--n", type=int, default=1024, help="prompts per measurement")
    args = ap.parse_args()
    rows = read_outcomes(args.outcomes)
    if len(rows) < 2 * args.n:
        raise SystemExit(f"need at least {2 * args.n} prompts, the table has {len(rows)}")
    small = asyncio.run(_rate(rows[:args.n], 64))
    bulk = asyncio.run(_rate(rows[args.n:2 * args.n], 512))
    print(f"{args.n} prompts in calls of 64: {small:.1f} texts/s; in calls of 512 "
          f"(>= BULK {BULK}): {bulk:.1f} texts/s ({bulk / small:.1f}x)")
    encoder, _ = _load(model_folder(), "numpy")
    long = [r.prompt for r in rows if len(encoder.windows(r.prompt)) > 1][:64]
    if not long:
        print("no prompt longer than one window")
        return
    started = time.perf_counter()
    by_numpy = encoder.encode(long)
    numpy_s = time.perf_counter() - started
    embedder = MiniLMEmbedder()
    started = time.perf_counter()
    by_torch = embedder._encode_bulk(encoder, _load(model_folder(), "numpy")[1], long)
    torch_s = time.perf_counter() - started
    cos = (by_numpy * by_torch).sum(axis=1)
    print(f"{len(long)} prompts longer than one window: numpy {len(long) / numpy_s:.1f} "
          f"texts/s, torch window by window {len(long) / torch_s:.1f} texts/s "
          f"({numpy_s / torch_s:.1f}x); cosine numpy vs torch min {float(np.min(cos)):.6f}")


if __name__ == "__main__":
    main()
