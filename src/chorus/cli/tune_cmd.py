"""``chorus tune``: design the system from recorded outcomes (see ``chorus.eval.tune``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from chorus.cli._args import amount, count, names, out_folder, outcome_table, share
from chorus.core.errors import ChorusError

__all__ = ["add_parser", "cmd_tune"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "tune", help="search systems built from a table's models; write the best as YAML",
        description="Search singles, weighted votes, agreement and learned-acceptance "
                    "cascades and learned routers on TRAIN (every candidate judged on every "
                    "item; fitted parts cross-fitted over three folds), write the "
                    "Pareto frontier as runnable systems (DIR/systems.yaml) and measure it "
                    "on TEST with the bench runner (DIR/frontier.json).",
        epilog="TRAIN needs at least 50 items over two models or more; `chorus outcomes "
               "convert long RECORDS.csv -o TABLE.jsonl` makes a table from your own "
               "records (one row per item and model: model, prompt, score), and `chorus "
               "outcomes split TABLE.jsonl --train TRAIN.jsonl --test TEST.jsonl` two "
               "disjoint tables. `chorus bench -c DIR/systems.yaml --systems NAME "
               "--dataset TEST.jsonl` reproduces a row of the frontier.")
    p.add_argument("--outcomes", required=True, metavar="TRAIN.jsonl",
                   help="the outcome table to search on (every candidate judged on every item, "
                        "fitted parts out of fold)")
    p.add_argument("--test", required=True, metavar="TEST.jsonl",
                   help="the table the frontier is measured on (and replayed from)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write")
    p.add_argument("--models", type=names, metavar="A,B,...",
                   help="build from these (default: all)")
    p.add_argument("--max-cost-share", type=share(one=True), metavar="SHARE",
                   help="recommend only systems costing at most this share of the "
                        "strongest model (e.g. 0.5)")
    p.add_argument("--tolerance", type=amount(0), default=0.01,
                   help="quality within this of the best counts as just as good (0.01)")
    p.add_argument("--extract", default="auto",
                   choices=["auto", "choice", "number", "yes_no", "none"],
                   help="what counts as the same answer (default: the kind that fits the "
                        "table's responses)")
    p.add_argument("--seed", type=count(0), default=0,
                   help="seed of the folds, the regions and the routers (0)")


def _embed(rows: Any, what: str) -> Any:
    from chorus.cli.main import run_async
    from chorus.cli.progress import step
    from chorus.embeddings.local import MiniLMEmbedder
    from chorus.eval.routers import embed_rows, embedding_cache

    with step(f"embedding {len(rows)} {what} prompts", len(rows)) as advance:
        return run_async(embed_rows(rows, MiniLMEmbedder(), embedding_cache(),
                                    on_batch=advance))


def _embedders(model: Any, seen: set[int] | None = None) -> list[Any]:
    """The embedders of a system's learned routers, learned checks and region-weighted
    votes."""
    seen = set() if seen is None else seen
    out = []
    holders = [model, getattr(model, "classifier", None),
               *(getattr(s, "check", None) for s in getattr(model, "stages", ()))]
    for h in holders:
        for emb in (getattr(h, "embedder", None), getattr(h, "weights_embedder", None)):
            if emb is not None and id(emb) not in seen:
                seen.add(id(emb))
                out.append(emb)
    for child in model.children():
        out.extend(_embedders(child, seen))
    return out


def _leaves(spec: Any, used: set[str]) -> None:
    """The model names a ``systems:`` entry refers to (as tune writes them)."""
    if isinstance(spec, str):
        used.add(spec)
    elif isinstance(spec, list):
        for v in spec:
            _leaves(v, used)
    elif isinstance(spec, dict):
        for k, v in spec.items():
            if k in ("models", "escalate_to", "model", "routes", "stages"):
                _leaves(list(v.values()) if k == "routes" else v, used)
            elif k == "check":
                _leaves({"model": v["judge"]} if "judge" in v else {}, used)


class _Plain(yaml.SafeDumper):
    """Writes a part used twice (a cascade that is a system and a router's route) out in
    full both times, not as an ``&id001`` anchor and a ``*id001`` alias."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _config(search: Any, test: Path, out: Path) -> dict[str, Any]:
    used: set[str] = set()
    for c in search.front:
        _leaves(c.spec, used)
    source = os.path.relpath(test.resolve(), out.resolve())
    return {"models": {m: {"provider": "replay", "outcomes": source, "model": m}
                       for m in sorted(used)},
            "systems": {c.name: c.spec for c in search.front}}


def cmd_tune(args: argparse.Namespace) -> int:
    from chorus.cli.main import run_async
    from chorus.cli.progress import say, step
    from chorus.config.builder import Config
    from chorus.eval import report
    from chorus.eval.answer_kind import pick_extract
    from chorus.eval.bench import error_lines, run_bench, system_kind
    from chorus.eval.outcomes import as_items, require_models, unrecorded
    from chorus.eval.scorers import make_scorer
    from chorus.eval.tune import require_searchable, search

    out_folder(args.out)
    train, test = outcome_table(args.outcomes), outcome_table(args.test)
    wanted = args.models
    models: list[str] = []
    for path, items in ((args.outcomes, train), (args.test, test)):
        try:
            models = require_models(items, wanted if path == args.outcomes else models)
        except ValueError as exc:
            raise ChorusError(f"{path}: {exc} (--models picks the models to build "
                              "from)") from None
    try:  # before the minutes of embedding, not after them
        require_searchable(len(train), models)
    except ValueError as exc:
        raise ChorusError(f"{args.outcomes}: {exc}") from None
    for path, items in ((args.outcomes, train), (args.test, test)):
        for line in unrecorded(items, models, no_score="counted as wrong",
                               no_cost="counted as $0"):
            print(f"chorus tune: note: {path}: {line}", file=sys.stderr)
    shared = {r.id for r in train} & {r.id for r in test}
    if shared:
        print(f"chorus tune: note: {len(shared)} of the {len(test)} test items are also "
              f"training items (the same id): their figures are not held out (`chorus "
              f"outcomes split` makes disjoint tables)", file=sys.stderr)
    if not any((r.outcomes[m].cost_usd or 0.0) > 0 for r in train for m in models
               if m in r.outcomes):
        print(f"chorus tune: note: {args.outcomes} records no cost: every system costs $0, "
              "so the frontier holds the best quality alone (record cost_usd to weigh "
              "quality against cost)", file=sys.stderr)
    extract = pick_extract(train, models) if args.extract == "auto" else (
        None if args.extract == "none" else args.extract)
    x_train = _embed(train, "training")
    x_test = _embed(test, "test")
    with step("searching systems on the training table") as _:
        started = time.monotonic()
        try:
            found = search(train, x_train, models, extract=extract, seed=args.seed,
                           on_step=lambda s: say(f"  {s} (at {time.monotonic() - started:.0f}"
                                                 " s)"))
        except ValueError as exc:
            raise ChorusError(f"{args.outcomes}: {exc}") from None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for c in found.front:
        for path, part in c.parts.items():
            part.save(out / path)
    doc = _config(found, Path(args.test), out)
    header = (f"# Written by chorus tune from {args.outcomes} ({len(found.candidates)} "
              f"systems searched; the {len(found.front)} on the held-out frontier).\n"
              f"# Replay models answer from {args.test}; for production, point each model "
              "at a live provider with the same name.\n")
    (out / "systems.yaml").write_text(header + yaml.dump(doc, Dumper=_Plain, sort_keys=False,
                                                          width=100), "utf-8")
    cfg = Config.load(out / "systems.yaml")
    systems = {c.name: cfg.get(c.name) for c in found.front}
    prompts = [r.prompt for r in test]
    for model in systems.values():
        for emb in _embedders(model):
            emb.remember(prompts, x_test)
    table = {r.id: r for r in test}

    async def go() -> Any:
        try:
            return await run_bench(systems, as_items(test), make_scorer("recorded",
                                                                        outcomes=table))
        finally:
            for m in systems.values():
                await m.aclose()

    with step(f"measuring {len(systems)} systems on {len(test)} test items"):
        results = run_async(go())
    for line in error_lines(results):  # a failed item scores 0: say why
        print(f"chorus tune: note: {line}", file=sys.stderr)
    summaries = [report.summarise(n, system_kind(systems[n]), results[n]) for n in systems]
    held = {c.name: c for c in found.front}
    rows = [{"name": s.system, "kind": s.kind, "family": held[s.system].family,
             "quality": s.quality, "quality_ci": [s.quality_low, s.quality_high],
             "cost_usd": s.cost_usd, "calls_per_item": s.calls_per_item, "split": "test",
             "held_out": {"quality": held[s.system].quality,
                          "cost_usd_per_item": held[s.system].cost,
                          "items": len(held[s.system].held_out.score)}}
            for s in summaries]
    (out / "frontier.json").write_text(json.dumps(rows, indent=2) + "\n", "utf-8")
    print(report.text_table(summaries))
    strongest = found.strongest
    alone = _alone(test, strongest)
    pool = summaries
    if args.max_cost_share is not None:
        budget = args.max_cost_share * alone[1]
        pool = [s for s in summaries if s.cost_usd <= budget]
        if not pool:
            raise ChorusError(f"no frontier system costs at most {args.max_cost_share:g} of "
                              f"{strongest} (${budget:.4g} on the test table)")
    best, why = report.recommend(pool, args.tolerance)
    if pool is not summaries:
        why += (f" (among the {len(pool)} costing at most {args.max_cost_share:g} of "
                f"{strongest})")
    print(f"\n{len(found.candidates)} systems searched on {found.items} training items "
          f"(fitted parts cross-fitted over three folds); {len(found.front)} on the "
          f"frontier, measured on {len(test)} test items.")
    print(f"wrote {out / 'systems.yaml'}, {out / 'frontier.json'}")
    print(f"recommended: {best}: {why}")
    for line in _against_strongest(summaries, strongest, *alone):
        print(line)
    return 0


def _alone(test: Any, model: str) -> tuple[float, float]:
    """``model`` alone on the test table: its mean score and its total cost (missing
    ones count 0)."""
    rows = [r.outcomes.get(model) for r in test]
    quality = sum((o.score or 0.0) if o is not None else 0.0 for o in rows) / max(len(rows), 1)
    return quality, sum((o.cost_usd or 0.0) if o is not None else 0.0 for o in rows)


def _against_strongest(summaries: Any, strongest: str, quality: float, cost: float
                       ) -> list[str]:
    """What the frontier buys against the strongest model alone on the test table (its
    ``quality`` and ``cost`` there): the cheapest system at least as good, and the best at
    most half its cost."""
    lines = [f"{strongest} alone on the test table: quality {quality:.3f}, ${cost:.4g}"]
    if cost <= 0:
        return lines

    def share(s: Any) -> str:
        return f"{s.system} ({s.quality:.3f}, {s.cost_usd / cost:.0%} of its cost)"

    matching = [s for s in summaries if s.quality >= quality]
    lines.append("  cheapest at least as good: " + (
        share(min(matching, key=lambda s: s.cost_usd)) if matching else "none on the frontier"))
    half = [s for s in summaries if s.cost_usd <= 0.5 * cost]
    lines.append("  best at most half its cost: " + (
        share(max(half, key=lambda s: (s.quality, -s.cost_usd))) if half
        else "none on the frontier"))
    return lines
