"""``chorus router fit --intents`` and ``chorus router eval --intents``: intent routers
(a trained head on MiniLM embeddings, optionally over a fine-tuned MiniLM)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from chorus.core.errors import ChorusError

__all__ = ["cmd_intents"]


def _embedder(path: Path | None = None) -> Any:
    from chorus.embeddings.local import MiniLMEmbedder

    return MiniLMEmbedder(path=path)


def _embed_fn(embedder: Any, what: str) -> Any:
    from chorus.cli.main import run_async
    from chorus.cli.progress import step
    from chorus.eval.intents import embed_texts
    from chorus.eval.routers import embedding_cache

    def embed(texts: list[str]) -> Any:
        with step(f"embedding {len(texts)} {what}", len(texts)) as advance:
            return run_async(embed_texts(texts, embedder, embedding_cache(),
                                         on_batch=advance))

    return embed


def _read(path: str) -> list[tuple[str, str]]:
    from chorus.eval.intents import read_intents

    try:
        return read_intents(path)
    except ValueError as exc:
        raise ChorusError(str(exc)) from None


def _fit(args: argparse.Namespace) -> int:
    from chorus.embeddings.local import model_folder
    from chorus.eval.intents import fit_intents
    from chorus.routing.intent import check_labels
    from chorus.routing.intent_tune import EPOCHS

    for flag, default in (("models", None), ("k", None), ("kind", "knn"),
                          ("holdout", 0.2), ("tolerance", 0.01), ("epochs", 40)):
        if getattr(args, flag) != default:
            raise ChorusError(f"--{flag} is for outcome tables, not --intents")
    train = _read(args.intents)
    try:  # before embedding (or minutes of fine-tuning)
        check_labels((label for _, label in train), args.abstain, validation="--val")
    except ValueError as exc:
        raise ChorusError(f"{args.intents}: {exc}") from None
    val = _read(args.val) if args.val else None
    epochs = 0
    if args.tune_encoder:
        epochs = EPOCHS if args.tune_epochs is None else args.tune_epochs
        if epochs < 1:
            raise ChorusError(f"--tune-epochs must be at least 1, got {epochs}")
    elif args.tune_epochs is not None:
        raise ChorusError("--tune-epochs needs --tune-encoder")
    from chorus.cli.progress import step

    names = {"auto": None, "yes": True, "no": False}[args.label_names]
    try:
        if epochs:
            with step(f"fine-tuning MiniLM on {len(train)} utterances"):
                head = fit_intents(train, args.out, val=val, abstain=args.abstain,
                                   tune_epochs=epochs, encoder=model_folder(), seed=args.seed,
                                   label_names=names)
        else:
            head = fit_intents(train, args.out, _embed_fn(_embedder(), "utterances"),
                               val=val, abstain=args.abstain, seed=args.seed,
                               label_names=names)
    except ValueError as exc:
        raise ChorusError(str(exc)) from None
    t = head.threshold
    score = ("probability" if head.mix >= 1.0 else
             f"{head.mix:g} x probability + {1 - head.mix:g} x nearest example's similarity")
    how = (f"threshold {t:.3f} on {score} (val balanced accuracy "
           f"{head.info['val_score']:.3f})"
           if t is not None else "no threshold (no out-of-scope utterances in --val)"
           if val else "no threshold (give --val with out-of-scope utterances to set one)")
    enc = f"MiniLM fine-tuned {epochs} epochs" if epochs else "MiniLM"
    named = ", plus the labels' names" if head.info.get("label_names") else ""
    print(f"intent router over {len(head.labels)} labels, {len(train)} examples{named}, "
          f"{enc}; C={head.info['c']:g}, {how} -> {args.out}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from chorus.eval.intents import evaluate_intents
    from chorus.routing.intent import IntentHead

    if args.plot:
        raise ChorusError("--plot is for outcome tables, not --intents")
    try:
        head = IntentHead.load(args.router)
    except ValueError as exc:
        raise ChorusError(str(exc)) from None
    test = _read(args.intents)
    abstain = str(head.info.get("abstain", "oos"))
    x = _embed_fn(_embedder(head.encoder), "utterances")([t for t, _ in test])
    r = evaluate_intents(head, x, [lb for _, lb in test], abstain)
    thr = "none" if head.threshold is None else f"{head.threshold:.3f}"
    print(f"intent router on {r.items} utterances ({r.in_scope} in scope, "
          f"{r.out_of_scope} labelled {abstain!r}); threshold {thr}")
    print(f"  accuracy {r.accuracy:.3f}   in-scope {r.in_scope_accuracy:.3f} "
          f"(no threshold {r.in_scope_accuracy_no_threshold:.3f})")
    if r.out_of_scope:
        p = "n/a" if r.oos_precision is None else f"{r.oos_precision:.3f}"
        print(f"  out-of-scope precision {p}   recall {r.oos_recall or 0.0:.3f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(r.to_dict(), indent=2) + "\n", "utf-8")
    return 0


def cmd_intents(args: argparse.Namespace) -> int:
    if args.router_command == "fit":
        return _fit(args)
    return _eval(args)
