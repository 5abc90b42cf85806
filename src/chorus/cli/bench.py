"""``chorus bench``, ``chorus outcomes`` and ``chorus feedback``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chorus.cli._args import amount, count, distinct_files, names, out_file, out_folder, share
from chorus.core.errors import ChorusError

if TYPE_CHECKING:
    from chorus.eval.outcomes import OutcomeItem

__all__ = ["add_parsers", "cmd_bench", "cmd_outcomes", "cmd_feedback"]


def add_parsers(sub: Any, config_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    bench = sub.add_parser(
        "bench", help="run systems over a dataset; compare quality, cost and latency",
        description="Run each system over a dataset (JSONL/CSV items or an outcome table) "
                    "and report quality with a 95% interval, cost, latency, calls and "
                    "errors; recommend the simplest system near the best.")
    config_arg(bench)
    bench.add_argument("--systems", required=True, type=names, metavar="A,B,...",
                       help="comma-separated system or model names")
    bench.add_argument("--dataset", required=True, metavar="FILE",
                       help="items (.jsonl/.csv/.json) or an outcome table (.jsonl)")
    bench.add_argument("--limit", type=count(1), metavar="N", help="only the first N items")
    bench.add_argument("--scorer", metavar="SPEC",
                       help="exact | contains | choice | numeric | regex:PATTERN | judge | "
                            "py:module:fn | recorded (default: recorded for an outcome "
                            "table, else exact)")
    bench.add_argument("--judge", metavar="NAME", help="the judge model for --scorer judge")
    bench.add_argument("--rubric", metavar="TEXT", help="the judge's rubric")
    bench.add_argument("--concurrency", type=count(1), default=8, metavar="N",
                       help="items in flight at once (default 8)")
    bench.add_argument("--timeout", type=amount(0, above=True), metavar="SECONDS",
                       help="deadline per item")
    bench.add_argument("--tolerance", type=amount(0), default=0.01,
                       help="quality within this of the best counts as just as good (default 0.01)")
    bench.add_argument("--out", metavar="DIR", default="bench-results",
                       help="folder for report.md, report.csv, report.json, "
                            "cost_quality.png (default: bench-results)")
    bench.add_argument("--json", metavar="OUT", help="also write the JSON summary here")
    bench.add_argument("--record", metavar="OUT.jsonl",
                       help="write the run as an outcome table (systems as models)")
    bench.add_argument("--no-plot", action="store_true", help="skip the PNG")
    bench.add_argument("--engine", choices=["local", "ray"], default="local",
                       help="answer here, or on a Ray cluster's workers (as chorus batch; "
                            "--concurrency is then per worker)")
    bench.add_argument("--address", metavar="ADDR", help="the Ray cluster (see chorus batch)")
    bench.add_argument("--workers", type=int, metavar="N",
                       help="Ray workers (default: every CPU of the cluster)")

    out = sub.add_parser("outcomes", help="convert or split outcome tables")
    osub = out.add_subparsers(dest="outcomes_command", metavar="ACTION",
                              parser_class=type(out))
    conv = osub.add_parser(
        "convert", help="an outcome table from your own records or public recorded outputs",
        description="An outcome table (one JSON line per item, every model's outcome in "
                    "it) from 'long' records, one row per item and model (a CSV, TSV or "
                    "JSONL with model, prompt and score columns; id, cost_usd, response, "
                    "output_tokens, reference and category kept when given), or from a "
                    "public recording.")
    conv.add_argument("source", choices=["long", "mmlu_pro", "routellm-gsm8k",
                                         "routellm-mmlu"],
                      help="long: your records, one row per item and model; or which public "
                           "recording the folder holds")
    conv.add_argument("folder", metavar="PATH",
                      help="the long file; or shared/data/mmlu_pro, shared/data/routellm")
    conv.add_argument("-o", "--output", required=True, metavar="OUT.jsonl",
                      help="the outcome table to write")
    conv.add_argument("--models", type=names, metavar="A,B",
                      help="only these models (long records and MMLU-Pro)")
    split = osub.add_parser("split", help="split a table into train and test at random")
    split.add_argument("table", metavar="TABLE.jsonl", help="the outcome table to split")
    split.add_argument("--train", required=True, metavar="OUT.jsonl",
                       help="where the training part goes")
    split.add_argument("--test", required=True, metavar="OUT.jsonl",
                       help="where the test part goes")
    split.add_argument("--test-share", type=share(), default=0.5, metavar="SHARE",
                       help="the share of items that go to the test part (default 0.5)")
    split.add_argument("--limit", type=count(1), metavar="N",
                       help="sample N items first (same seed)")
    split.add_argument("--seed", type=int, default=0, metavar="N",
                       help="seed of the random split and sample (default 0)")
    vote = osub.add_parser(
        "vote", help="plan a weighted vote from a table: members and log-odds weights",
        description="Weigh each model by the log-odds of its recorded score, replay the "
                    "weighted vote of the best 1..N models on the table, and print the "
                    "size that scored best as a `systems:` entry for a config file.")
    vote.add_argument("table", metavar="TRAIN.jsonl",
                      help="the outcome table to weigh the models on")
    vote.add_argument("--extract", default="choice",
                      choices=["choice", "number", "yes_no", "none"],
                      help="what counts as the same answer (default: choice letters; "
                           "none: the normalised text)")
    vote.add_argument("--models", type=names, metavar="A,B,...", help="only these models")
    vote.add_argument("--max-models", type=count(1), default=12, metavar="N",
                      help="try votes of up to N models (default 12)")
    vote.add_argument("--name", default="weighted_vote", help="the system's name")

    fb = sub.add_parser("feedback", help="update a weighted ensemble's weights and a learned "
                                           "router's statistics from real outcomes")
    config_arg(fb)
    fb.add_argument("-s", "--system", required=True,
                    help="a system holding a weighted ensemble and/or a learned router")
    fb.add_argument("--model", help="the model the outcome is about")
    fb.add_argument("--reward", type=float, help="the outcome, 0 (bad) to 1 (good)")
    fb.add_argument("--outcomes", metavar="TABLE.jsonl",
                    help="replay every recorded score of the members' models")
    fb.add_argument("--limit", type=count(1), metavar="N",
                    help="only the first N rows of --outcomes")
    fb.add_argument("--json", action="store_true", help="print the weights as JSON")


def _is_outcome_table(path: Path) -> bool:
    if path.suffix.lower() != ".jsonl" or not path.is_file():
        return False
    with path.open(encoding="utf-8-sig") as f:
        for line in f:
            if line.strip():
                try:
                    return "outcomes" in json.loads(line)
                except json.JSONDecodeError:
                    return False
    return False


def cmd_bench(args: argparse.Namespace) -> int:
    from chorus.cli.main import load_config, run_async
    from chorus.eval import report
    from chorus.eval.bench import (
        Progress,
        error_lines,
        exact_misses,
        run_bench,
        system_kind,
        to_outcomes,
    )
    from chorus.eval.datasets import load_dataset
    from chorus.eval.outcomes import as_items, read_outcomes, write_outcomes
    from chorus.eval.scorers import make_scorer

    chosen: list[str] = args.systems
    out_folder(args.out)
    out_file(args.json, "--json")
    out_file(args.record, "--record")
    distinct_files({"--dataset": args.dataset}, {"--json": args.json, "--record": args.record})
    cfg = load_config(args.config)
    systems = {n: cfg.get(n) for n in chosen}
    path = Path(args.dataset)
    table = None
    if _is_outcome_table(path):
        rows = read_outcomes(path, limit=args.limit)
        items, table = as_items(rows), {r.id: r for r in rows}
    else:
        items = load_dataset(path, limit=args.limit)
    if not items:
        raise ChorusError(f"dataset {str(path)!r} has no items")
    spec = args.scorer or ("recorded" if table is not None else "exact")
    judge = cfg.get(args.judge) if args.judge else None
    scorer = make_scorer(spec, judge=judge, rubric=args.rubric, outcomes=table)
    progress = Progress(len(items) * len(systems))

    answerer, concurrency = None, args.concurrency
    if args.engine == "ray":
        answerer, concurrency = _ray_answers(args, chosen)

    async def go() -> Any:
        try:
            if answerer is not None:
                await answerer.start()
            return await run_bench(systems, items, scorer, concurrency=concurrency,
                                   timeout_s=args.timeout, progress=progress,
                                   answerer=answerer)
        finally:
            if answerer is not None:
                await answerer.close()
            for m in systems.values():
                await m.aclose()

    results = run_async(go())
    summaries = [report.summarise(n, system_kind(systems[n]), results[n]) for n in chosen]
    print(report.text_table(summaries))
    best, why = report.recommend(summaries, args.tolerance)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    note = (f"{len(items)} items of {path.name}, scorer {scorer.name}; "
            f"recommended: {best}: {why}")
    errors = error_lines(results)
    for line in errors:
        print(f"chorus bench: {line}", file=sys.stderr)
    misses = exact_misses(results, items) if scorer.name == "exact" else []
    if misses:
        misses.append("exact match wants the whole answer to be the reference; for answers "
                      "in sentences use --scorer contains (the reference as words in the "
                      "answer, negations not read), regex:PATTERN, judge or py:module:fn")
        for line in misses:
            print(f"chorus bench: note: {line}", file=sys.stderr)
        note += "\n\n### Scoring\n\n" + "\n".join(f"- {line}" for line in misses)
    if errors:
        note += "\n\n### Errors\n\n```\n" + "\n".join(errors) + "\n```"
    (out / "report.md").write_text(report.markdown(summaries, title="chorus bench",
                                                   note=note), "utf-8")
    (out / "report.csv").write_text(report.to_csv(summaries), "utf-8")
    (out / "report.json").write_text(report.to_json(summaries), "utf-8")
    written = [str(out / f) for f in ("report.md", "report.csv", "report.json")]
    if not args.no_plot:
        front = report.pareto(summaries)
        png = report.plot([(s.system, s.cost_usd, s.quality) for s in summaries],
                          out / "cost_quality.png", title=f"{path.name}: quality vs cost",
                          frontier=front)
        written.append(str(png))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(report.to_json(summaries), "utf-8")
        written.append(args.json)
    if args.record:
        write_outcomes(args.record, to_outcomes(items, results))
        written.append(args.record)
    print(f"\nrecommended: {best}: {why}")
    print(f"wrote {', '.join(written)}", file=sys.stderr)
    return 0


def _ray_answers(args: argparse.Namespace, chosen: list[str]) -> tuple[Any, int]:
    """The Ray workers that answer for ``chorus bench --engine ray``, and the number of
    items in flight (``--concurrency`` per worker)."""
    import os

    from chorus.batch import ray_session
    from chorus.batch.bench import RayAnswers

    path = args.config or os.environ.get("CHORUS_CONFIG")
    if not path:
        raise ChorusError("--engine ray needs the config as a file (-c FILE): each worker "
                          "builds the systems from it")
    if args.workers is not None and args.workers < 1:
        raise ChorusError("--workers must be at least 1")
    ray = ray_session(args.address)
    workers = args.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    return RayAnswers(Path(path), chosen, workers, args.timeout), args.concurrency * workers


def cmd_outcomes(args: argparse.Namespace) -> int:
    import random

    from chorus.eval.convert import mmlu_pro_outcomes, routellm_outcomes
    from chorus.eval.outcomes import models_of, read_outcomes, write_outcomes

    writes = {flag: getattr(args, path, None)
              for flag, path in (("-o", "output"), ("--train", "train"), ("--test", "test"))}
    for flag, out in writes.items():
        out_file(out, flag)
    source = "folder" if args.outcomes_command == "convert" else "table"
    distinct_files({source: getattr(args, source, None)}, writes)
    if args.outcomes_command == "convert":
        if args.source == "long":
            from chorus.eval.long_table import long_outcomes

            rows, ignored = long_outcomes(args.folder)
            if args.models:
                rows = _only(rows, args.models, args.folder)
            if ignored:
                print(f"chorus outcomes: note: {args.folder}: columns left out: "
                      f"{', '.join(ignored)}", file=sys.stderr)
        elif args.source == "mmlu_pro":
            rows = mmlu_pro_outcomes(args.folder, models=args.models)
        else:
            rows = routellm_outcomes(args.folder, args.source.split("-", 1)[1])
        n = write_outcomes(args.output, rows)
        m = len(models_of(rows))
        print(f"wrote {n} items ({m} model{'' if m == 1 else 's'}) to {args.output}")
        return 0
    if args.outcomes_command == "split":
        rows = read_outcomes(args.table)
        rng = random.Random(args.seed)
        rng.shuffle(rows)
        if args.limit is not None:
            rows = rows[: args.limit]
        cut = int(round(len(rows) * args.test_share))
        if not 0 < cut < len(rows):
            empty = "test" if cut == 0 else "training"
            raise ChorusError(f"{args.table}: {len(rows)} item(s) at --test-share "
                              f"{args.test_share:g} leave the {empty} part empty")
        write_outcomes(args.test, rows[:cut])
        write_outcomes(args.train, rows[cut:])
        print(f"train {len(rows) - cut} items -> {args.train}; test {cut} -> {args.test} "
              f"(seed {args.seed})")
        return 0
    if args.outcomes_command == "vote":
        return _plan_vote(args)
    raise ChorusError("give an action: chorus outcomes convert|split|vote (see --help)")


def _only(rows: list[OutcomeItem], models: list[str], path: str) -> list[OutcomeItem]:
    """The rows with only ``models``' outcomes (each must be in the table)."""
    from chorus.eval.outcomes import require_models

    try:
        require_models(rows, models)
    except ValueError as exc:
        raise ChorusError(f"{path}: {exc}") from None
    return [replace(r, outcomes={m: o for m, o in r.outcomes.items() if m in models})
            for r in rows]


def _plan_vote(args: argparse.Namespace) -> int:
    from chorus.eval.ensembles import plan_vote, vote_yaml
    from chorus.eval.outcomes import read_outcomes
    from chorus.patterns.agreement import extractor

    rows = read_outcomes(args.table)
    kind = None if args.extract == "none" else args.extract
    models = args.models
    try:
        plan = plan_vote(rows, extract=extractor(kind), models=models,
                         max_models=args.max_models)
    except ValueError as exc:
        raise ChorusError(f"{args.table}: {exc}") from None
    print(f"{len(rows)} items. Models by mean score (weight = log-odds):")
    for m, acc in plan.accuracy.items():
        w = f"{plan.weights[m]:.3f}" if m in plan.weights else "-"
        print(f"  {m}: {acc:.3f}  weight {w}")
    print("Weighted vote of the best k, replayed on the table: " + ", ".join(
        f"k={k} {q:.3f}" for k, q in plan.quality_by_size.items()))
    print(f"Best: k={len(plan.models)}. Add to your config (re-check it on a held-out "
          "table, e.g. with chorus bench):\n")
    print(vote_yaml(plan, name=args.name, extract=kind), end="")
    return 0


def _learners(model: Any, found: list[Any] | None = None) -> list[Any]:
    """Every weighted ensemble and every learned router classifier in a system's tree."""
    from chorus.patterns.router import Router
    from chorus.patterns.weighted import Weighted
    from chorus.routing.learned import LearnedClassifier

    out = [] if found is None else found
    if isinstance(model, Weighted) and model not in out:
        out.append(model)
    if isinstance(model, Router) and isinstance(model.classifier, LearnedClassifier) \
            and model.classifier not in out:
        out.append(model.classifier)
    for child in model.children():
        _learners(child, out)
    return out


def _update(learner: Any, model: str, reward: float) -> bool:
    """One outcome into a weighted ensemble or a learned router; False if the model is
    not one of its members (a route name counts for the model it routes to)."""
    from chorus.routing.learned import LearnedClassifier

    if isinstance(learner, LearnedClassifier):
        recorded = dict(zip(learner.names, learner.predictor.models, strict=True))
        name = model if model in learner.predictor.models else recorded.get(model)
        if name is None:
            return False
        learner.record_outcome(name, reward)
        return True
    if model not in learner.names:
        return False
    learner.record_outcome(model, reward)
    return True


def cmd_feedback(args: argparse.Namespace) -> int:
    from chorus.cli.main import dump_json, load_config
    from chorus.eval.outcomes import read_outcomes
    from chorus.routing.learned import LearnedClassifier

    cfg = load_config(args.config)
    learners = _learners(cfg.get(args.system))
    if not learners:
        raise ChorusError(f"{args.system!r} holds no weighted ensemble and no learned router")
    if (args.outcomes is None) == (args.model is None):
        raise ChorusError("give --model M --reward R, or --outcomes TABLE.jsonl")
    for lr in learners:
        # Feedback that is not kept is lost when this command ends: refuse it up front.
        if isinstance(lr, LearnedClassifier):
            if lr.path is None:
                raise ChorusError(f"{args.system!r}: its learned router was not loaded from "
                                  "a file, so feedback would not be saved: set its `path:`")
        elif lr.weights_file is None:
            raise ChorusError(f"{lr.name!r} has no weights_file, so feedback would not be "
                              f"saved: set `weights_file: PATH` on it")
    updates = 0
    try:
        if args.model is not None:
            if args.reward is None:
                raise ChorusError("--model needs --reward (0 to 1)")
            hits = sum(_update(lr, args.model, args.reward) for lr in learners)
            if not hits:
                raise ChorusError(f"no weighted ensemble or learned router in {args.system!r} "
                                  f"has a model {args.model!r}")
            updates = hits
        else:
            rows = read_outcomes(args.outcomes, limit=args.limit)
            for row in rows:
                for name, o in row.outcomes.items():
                    if o.score is not None:
                        reward = min(1.0, max(0.0, o.score))
                        updates += sum(_update(lr, name, reward) for lr in learners)
            if not updates:  # say so, rather than save weights no row moved
                from chorus.eval.outcomes import models_of

                members = sorted({m for lr in learners for m in (
                    lr.predictor.models if isinstance(lr, LearnedClassifier) else lr.weights)})
                raise ChorusError(
                    f"{args.outcomes}: no recorded score is for a model of {args.system!r} "
                    f"({', '.join(members)}); the table has "
                    f"{', '.join(models_of(rows)) or 'no items'} (name the members as the "
                    "table does)")
    except ValueError as exc:
        raise ChorusError(str(exc)) from None
    report: dict[str, Any] = {"updates": updates}
    notes = []
    for lr in learners:
        if isinstance(lr, LearnedClassifier):
            assert lr.path is not None  # refused above
            lr.predictor.save(lr.path)
            shift = {m: round(float(v), 4) for m, v in zip(
                lr.predictor.models, lr.predictor.shifts(), strict=True)}
            report.setdefault("routers", {})[str(lr.path)] = {
                "feedback": {m: list(v) for m, v in lr.predictor.feedback.outcomes.items()},
                "shift": shift}
            notes.append(f"router {lr.path}: statistics saved")
        else:
            report.setdefault("weights", {}).update(lr.weights)
            notes.append(f"weights saved to {lr.weights_file}")
    if args.json:
        print(dump_json(report))
    else:
        for name, w in sorted(report.get("weights", {}).items(), key=lambda kv: -kv[1]):
            print(f"{name:30} {w:.4f}")
        for path, r in report.get("routers", {}).items():
            print(f"router {path}:")
            for name, v in sorted(r["shift"].items(), key=lambda kv: -kv[1]):
                n = r["feedback"].get(name, [0, 0.0])[0]
                print(f"  {name:28} shift {v:+.4f} ({n} outcomes)")
        print(f"{updates} update(s); {'; '.join(notes)}", file=sys.stderr)
    return 0
