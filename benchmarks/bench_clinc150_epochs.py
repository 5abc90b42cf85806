"""CLINC150, k examples per intent: the intent router with MiniLM fine-tuned for a given
number of epochs (``fit_intents``, what ``chorus router fit --intents --tune-encoder
--tune-epochs N`` runs), val choosing C, mix and threshold as always; prints the val and
test figures so that the epochs can be compared on val.

    .venv/bin/python benchmarks/bench_clinc150_epochs.py --epochs 8 [--k 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _clinc150 import load as load_clinc150

from chorus.embeddings.local import model_folder
from chorus.eval.intents import fit_intents

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(HERE.parents[1] / "shared" / "data"))
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--epochs", type=int, required=True)
    args = parser.parse_args()
    from sentence_transformers import SentenceTransformer

    clinc = load_clinc150(args.data)
    test, val = clinc.test, clinc.val
    examples = clinc.examples(args.k)
    train = [(t, i) for i in clinc.intents for t in examples[i]]
    t0 = time.time()
    with tempfile.TemporaryDirectory() as out:
        head = fit_intents(train, out, val=val, tune_epochs=args.epochs,
                           encoder=model_folder(), seed=0)
        fit_s = time.time() - t0
        model = SentenceTransformer(str(head.encoder), device="cpu")
        vx = model.encode([t for t, _ in val], batch_size=64, normalize_embeddings=True)
        x = model.encode([t for t, _ in test], batch_size=64, normalize_embeddings=True)
    vy = np.array([i for _, i in val])
    gold = np.array([i for _, i in test])
    vin, tin = vy != "oos", gold != "oos"
    print(f"k {args.k}, epochs {args.epochs}: C {head.info['c']:g}, mix {head.mix:g}, "
          f"val balanced {head.info['val_score']:.4f}, val in-scope "
          f"{np.mean(np.array(head.predict(vx[vin], -np.inf)) == vy[vin]):.4f}, test "
          f"in-scope {np.mean(np.array(head.predict(x[tin], -np.inf)) == gold[tin]):.4f}, "
          f"test overall {np.mean(np.array([p or 'oos' for p in head.predict(x)]) == gold):.4f}"
          f" (fit {fit_s:.0f} s)")


if __name__ == "__main__":
    main()
