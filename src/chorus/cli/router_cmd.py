"""``chorus router fit`` and ``chorus router eval``: learned routers on outcome tables."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from chorus.cli._args import (
    amount,
    count,
    distinct_files,
    names,
    out_file,
    out_folder,
    outcome_table,
    share,
)
from chorus.core.errors import ChorusError

__all__ = ["add_parser", "cmd_router"]


def add_parser(sub: Any) -> None:
    router = sub.add_parser("router", help="fit and evaluate learned routers")
    rsub = router.add_subparsers(dest="router_command", metavar="ACTION",
                                 parser_class=type(router))
    fit = rsub.add_parser("fit", help="learn which model to call from an outcome table",
                          description="Fit a router on local MiniLM embeddings of the "
                                      "prompts; a held-out split calibrates the cost knob.")
    src = fit.add_mutually_exclusive_group(required=True)
    src.add_argument("--outcomes", metavar="TRAIN.jsonl", help="the outcome table to fit on")
    src.add_argument("--intents", metavar="TRAIN",
                     help="an intent router instead: labelled utterances (JSONL of "
                          "{text, label}, CSV/TSV with columns text and label, or "
                          "YAML/JSON label -> utterances)")
    fit.add_argument("--out", required=True, metavar="ROUTER", help="folder to write")
    fit.add_argument("--kind", choices=["knn", "mlp", "mf"], default="knn",
                     help="nearest neighbours (default), a small MLP, or matrix factorisation")
    fit.add_argument("--models", type=names, metavar="A,B,...",
                     help="route among these (default: all)")
    fit.add_argument("--holdout", type=share(), default=0.2,
                     help="share of items kept to calibrate the knob (0.2)")
    fit.add_argument("--tolerance", type=amount(0), default=0.01,
                     help="default knob: cheapest within this of the best held-out quality")
    fit.add_argument("--k", type=count(1), default=None,
                     help="neighbours (knn; default: the best of 10, 20, 50, 100, 200, "
                          "up to a tenth of the training items, on the held-out split)")
    fit.add_argument("--epochs", type=count(1), default=40, help="training epochs (mlp, mf)")
    fit.add_argument("--seed", type=count(0), default=0, metavar="N",
                     help="seed of the holdout split and the fit (default 0)")
    it = fit.add_argument_group("intent routers (--intents)")
    it.add_argument("--val", metavar="VAL", help="labelled utterances that choose C and the "
                    "abstention threshold (out-of-scope ones labelled --abstain)")
    it.add_argument("--abstain", default="oos", metavar="LABEL",
                    help="the label of out-of-scope utterances (oos)")
    it.add_argument("--tune-encoder", action="store_true",
                    help="fine-tune MiniLM on the examples first (contrastive, torch)")
    it.add_argument("--tune-epochs", type=int, default=None, metavar="N",
                    help="passes over the examples when fine-tuning (4)")
    it.add_argument("--label-names", choices=("auto", "yes", "no"), default="auto",
                    help="add each label's name, as words, to its examples (auto: when "
                         "--val scores the router higher with them)")

    ev = rsub.add_parser("eval", help="APGR, CPT(50%%), CPT(80%%) and AIQ on a test table")
    ev.add_argument("--router", required=True, metavar="ROUTER",
                    help="the folder router fit wrote")
    esrc = ev.add_mutually_exclusive_group(required=True)
    esrc.add_argument("--outcomes", metavar="TEST.jsonl",
                      help="the outcome table to evaluate on")
    esrc.add_argument("--intents", metavar="TEST",
                      help="labelled utterances, for an intent router")
    ev.add_argument("--json", metavar="OUT", help="write the metrics and curve as JSON")
    ev.add_argument("--plot", metavar="PNG",
                    help="the curve's PNG (default: ROUTER/curve-<table>.png)")


def _embed(rows: Any) -> Any:
    """The rows' MiniLM embeddings, from the user's cache folder when done before."""
    from chorus.cli.main import run_async
    from chorus.cli.progress import step
    from chorus.embeddings.local import MiniLMEmbedder
    from chorus.eval.routers import embed_rows, embedding_cache

    with step(f"embedding {len(rows)} prompts", len(rows)) as advance:
        return run_async(embed_rows(rows, MiniLMEmbedder(), embedding_cache(),
                                    on_batch=advance))


def _fmt(v: float | None) -> str:
    return "never" if v is None else f"{v:.3f}"


def cmd_router(args: argparse.Namespace) -> int:
    from chorus.eval.outcomes import models_of, require_models, unrecorded
    from chorus.eval.routers import evaluate_router, fit_router
    from chorus.routing.learned import require_fittable
    from chorus.routing.predictor import Neighbours, OutcomePredictor

    if args.router_command == "fit":
        out_folder(args.out)
    else:
        out_file(args.json, "--json")
        out_file(args.plot, "--plot")
        distinct_files({"--outcomes": getattr(args, "outcomes", None),
                        "--intents": getattr(args, "intents", None)},
                       {"--json": args.json, "--plot": args.plot})
    if getattr(args, "intents", None):
        from chorus.cli.router_intents import cmd_intents

        return cmd_intents(args)
    if args.router_command == "fit":
        for flag, default in (("val", None), ("abstain", "oos"), ("tune_encoder", False),
                              ("tune_epochs", None), ("label_names", "auto")):
            if getattr(args, flag) != default:
                raise ChorusError(f"--{flag.replace('_', '-')} is for --intents, "
                                  "not outcome tables")
        rows = outcome_table(args.outcomes)
        out = Path(args.out)
        models = args.models
        try:  # before embedding, which takes minutes on a large table
            require_fittable(len(rows), require_models(rows, models))
        except ValueError as exc:
            raise ChorusError(f"{args.outcomes}: {exc}") from None
        for line in unrecorded(rows, models or models_of(rows),
                               no_score="treated as unknown",
                               no_cost="left out of its mean cost"):
            print(f"chorus router: note: {args.outcomes}: {line}", file=sys.stderr)
        x = _embed(rows)
        try:
            router = fit_router(rows, x, kind=args.kind, models=models, holdout=args.holdout,
                                tolerance=args.tolerance, k=args.k, epochs=args.epochs,
                                seed=args.seed)
        except ValueError as exc:
            raise ChorusError(f"{args.outcomes}: {exc}") from None
        router = replace(router, training=replace(router.training, embedder="minilm",
                                                  trained_on=str(args.outcomes)))
        router.save(out)
        kind = f"knn (k={router.scorer.k})" if isinstance(router.scorer, Neighbours) \
            else args.kind
        print(f"{kind} router over {len(router.models)} models "
              f"({', '.join(router.models)}), {router.training.train_items} training items; "
              f"calibrated willingness_to_pay {router.willingness_to_pay:.4g} on "
              f"{router.training.holdout_items} held-out items -> {out}")
        areas = router.training.price_chosen_from
        if areas:
            how = ("priced by prompt length" if router.price_by_length is not None
                   else "priced at each model's mean cost")
            print(f"  {how}: held-out curve area {areas['by_length']:.4f} by length, "
                  f"{areas['mean']:.4f} at mean costs")
        return 0
    if args.router_command == "eval":
        try:
            router = OutcomePredictor.load(args.router)
        except ValueError as exc:
            raise ChorusError(str(exc)) from None
        rows = outcome_table(args.outcomes)
        try:  # before embedding
            require_models(rows, router.models)
        except ValueError as exc:
            raise ChorusError(f"{args.outcomes}: {exc} ({args.router} routes between "
                              f"{', '.join(router.models)})") from None
        x = _embed(rows)
        try:
            result = evaluate_router(router, rows, x)
        except ValueError as exc:
            raise ChorusError(f"{args.outcomes}: {exc}") from None
        m, r = result.metrics, result.random
        priced = ("each call priced by its prompt's length" if router.price_by_length
                  is not None else "each call at its model's mean cost")
        print(f"{router.kind} router on {len(rows)} items: weak {m.weak}, strong {m.strong}; "
              f"{priced}")
        print(f"  APGR {m.apgr:.3f}   CPT(50%) {_fmt(m.cpt50)}   CPT(80%) {_fmt(m.cpt80)}   "
              f"AIQ {m.aiq:.4f}")
        print(f"  random router: APGR {r.apgr:.3f}   CPT(50%) {_fmt(r.cpt50)}   "
              f"CPT(80%) {_fmt(r.cpt80)}   AIQ {r.aiq:.4f}")
        c = result.calls
        print(f"  in calls to {c.strong}, as RouteLLM counts (a random router: APGR 0.5): "
              f"APGR {c.apgr:.3f}   CPT(50%) {_fmt(c.cpt50)}   CPT(80%) {_fmt(c.cpt80)}")
        d = result.at_default
        print(f"  at the calibrated knob ({router.willingness_to_pay:.4g}): quality "
              f"{d.quality:.3f}, cost ${d.cost_usd:.4g}")
        from chorus.eval.report import plot

        png = Path(args.plot) if args.plot else \
            Path(args.router) / f"curve-{Path(args.outcomes).stem}.png"
        plot([("", p.cost_usd, p.quality) for p in result.curve], png, line=True,
             title=f"{router.kind} router: quality vs cost")
        print(f"  curve: {png}")
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            doc = {**result.to_dict(), "priced_by_length": router.price_by_length is not None}
            Path(args.json).write_text(json.dumps(doc, indent=2) + "\n", "utf-8")
        return 0
    raise ChorusError("give an action: chorus router fit|eval (see --help)")
