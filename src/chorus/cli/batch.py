"""``chorus batch``: run a system over a JSONL (or CSV/TSV) file of items, resumably."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chorus.cli._args import distinct_files
from chorus.core.errors import ChorusError

if TYPE_CHECKING:
    from chorus.batch import Job

__all__ = ["add_parser", "cmd_batch", "EXIT_INCOMPLETE"]

#: The run stopped before every item had a line (the budget was reached).
EXIT_INCOMPLETE = 3


def add_parser(sub: Any, config_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser(
        "batch", help="run a system over a JSONL, CSV or TSV file of items, resumably",
        description="Answer every item of ITEMS.jsonl (one {id, prompt | messages, params, "
                    "metadata} a line, or a CSV/TSV with a prompt column) with a system "
                    "and append one JSON line per item to ANSWERS.jsonl, which is also "
                    "the checkpoint: after a crash, Ctrl-C or kill, --resume answers "
                    "exactly the items that have no line yet.",
        epilog="Exit status: 0 when every item has a line (failed items included; see "
               "the summary), 3 when the budget stopped the run first, 1 on an error.")
    config_arg(p)
    p.add_argument("-s", "--system", help="system or model name (default: the config's default)")
    p.add_argument("--input", required=True, metavar="ITEMS.jsonl",
                   help="the items, one JSON object a line (id, prompt or messages), or "
                        "a .csv/.tsv with a prompt column (an id column, else the row "
                        "number; the other columns go to metadata)")
    p.add_argument("--output", required=True, metavar="ANSWERS.jsonl",
                   help="answers, one per line; also the checkpoint a rerun resumes from")
    p.add_argument("--concurrency", type=int, default=8, metavar="N",
                   help="items in flight at once (per Ray worker with --engine ray; 8)")
    p.add_argument("--budget", type=float, metavar="USD",
                   help="stop before the output's total cost would pass this (reserving "
                        "each call's most possible cost first, as the budget wrapper does)")
    p.add_argument("--store", metavar="NAME",
                   help="a store under 'stores:' that holds the run's budget (needed with "
                        "--engine ray; a Redis store holds it across every worker)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run that wrote ANSWERS.jsonl")
    p.add_argument("--retry-failed", action="store_true",
                   help="like --resume, and answer again the items that failed")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="run in this process (local, the default) or on a Ray cluster")
    p.add_argument("--address", metavar="ADDR",
                   help="the Ray cluster (auto: the one 'ray start' runs on this machine; "
                        "default: start one in this process)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="Ray workers, one CPU each (default: every CPU of the cluster)")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="deadline per item")
    p.add_argument("--trace", action="store_true", help="write each answer's trace")


def _check_numbers(args: argparse.Namespace) -> None:
    if args.concurrency < 1:
        raise ChorusError("--concurrency must be at least 1")
    if args.budget is not None and args.budget < 0:
        raise ChorusError("--budget must be at least 0")
    if args.workers is not None and args.workers < 1:
        raise ChorusError("--workers must be at least 1")
    if args.timeout is not None and args.timeout <= 0:
        raise ChorusError("--timeout must be more than 0 seconds")
    if args.engine == "local" and (args.address or args.workers):
        raise ChorusError("--address and --workers are for --engine ray")


def _job(args: argparse.Namespace) -> Job:
    """The job the flags describe, its config and system checked (before the output is
    touched: a bad config changes nothing)."""
    from importlib import resources

    from chorus.batch import Job
    from chorus.config.builder import DEFAULT_CONFIG_NAME
    from chorus.core.errors import ConfigError

    path = args.config or os.environ.get("CHORUS_CONFIG")
    options: dict[str, Any] = {"trace": args.trace, "timeout_s": args.timeout,
                               "store": args.store}
    run_id = uuid.uuid4().hex[:12]
    if path:
        if not os.path.isfile(path):
            raise ConfigError(f"config file not found: {path}")
        job = Job.from_file(path, "", run_id, **options)
    else:
        text = resources.files("chorus.config").joinpath("default.yaml").read_text("utf-8")
        job = Job(text, DEFAULT_CONFIG_NAME, "", run_id, **options)
    cfg = job.config()
    system = args.system or cfg.default_system
    cfg.get(system)  # an unknown name or a bad node fails here, with file and line
    if args.store is not None and args.store not in cfg.builder.root.stores:
        known = ", ".join(cfg.builder.root.stores) or "none"
        raise ChorusError(f"--store {args.store!r} is not under 'stores:' in the config "
                          f"(defined: {known})")
    if args.engine == "ray" and args.budget is not None:
        spec = cfg.builder.root.stores.get(args.store) if args.store else None
        kind = spec if isinstance(spec, str) else (spec or {}).get("kind", "memory")
        if kind == "memory":
            raise ChorusError("--budget with --engine ray needs a store every worker shares: "
                              "define one under 'stores:' (kind: redis) and pass --store NAME")
    return dataclasses.replace(job, system=system)


def cmd_batch(args: argparse.Namespace) -> int:
    from chorus.batch import Bar, Writer, items, open_output, run_local, run_ray

    _check_numbers(args)
    distinct_files({"--input": args.input}, {"--output": args.output})
    scanned = items.scan(args.input)
    job = _job(args)
    prev = open_output(args.output, resume=args.resume, retry_failed=args.retry_failed)
    wanted = set(scanned.ids)
    extra = len(prev.answered - wanted)
    left = [i for i in scanned.ids if i not in prev.answered]
    notes = []
    if prev.repaired:
        notes.append("cut off a torn last line")
    if prev.retried:
        notes.append(f"answering {prev.retried} failed items again")
    if extra:
        notes.append(f"{extra} lines are for ids not in the input (kept)")
    if prev.answered:
        notes.append(f"{len(prev.answered & wanted)} of {len(wanted)} items already have a line")
    for note in notes:
        print(f"chorus: {args.output}: {note}", file=sys.stderr)
    total = len(scanned.ids)
    if not left:
        print(f"batch: nothing to do: all {total} items of {args.input} have a line in "
              f"{args.output}")
        return 0
    if args.budget is not None:  # the budget is for the whole output, earlier runs included
        job = dataclasses.replace(job, budget_usd=max(0.0, args.budget - prev.cost_usd))
    todo = items.stream(args.input, skip=prev.answered)
    workers = 0
    if args.engine == "ray":
        from chorus.batch import ray_session

        ray = ray_session(args.address)
        workers = args.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    writer = Writer(args.output)
    bar = Bar(total, already=total - len(left))
    try:
        with bar:
            if args.engine == "ray":
                outcome = asyncio.run(run_ray(job, todo, writer, concurrency=args.concurrency,
                                              workers=workers, tally=bar))
            else:
                outcome = asyncio.run(run_local(job, todo, writer,
                                                concurrency=args.concurrency, tally=bar))
    except KeyboardInterrupt:
        print(f"chorus: interrupted: {bar.done + bar.failed} answers written this run; "
              "run again with --resume to finish", file=sys.stderr)
        return 130
    finally:
        writer.close()
        if args.engine == "ray":
            ray.shutdown()
    remaining = len(left) - outcome.answered
    rate = outcome.answered / outcome.elapsed_s if outcome.elapsed_s > 0 else 0.0
    where = (f" on {workers} Ray workers (started in {outcome.setup_s:.1f}s)" if workers
             else "")
    print(f"batch: {total} items: {outcome.done} done, {outcome.failed} failed, "
          f"{remaining} left, {total - len(left)} from before; ${outcome.cost_usd:.4f} spent "
          f"(${prev.cost_usd + outcome.cost_usd:.4f} in all); {outcome.elapsed_s:.1f}s, "
          f"{rate:.1f} items/s{where}")
    if outcome.failed:
        from chorus.eval.bench import commonest_messages

        tally = {message or "(other messages)": v for message, v in outcome.errors.items()}
        for line in commonest_messages(tally):
            print(f"batch: {line}", file=sys.stderr)
        print(f"batch: each failed item's line in {args.output} holds its error; "
              "--retry-failed answers them again", file=sys.stderr)
    if outcome.stopped:
        print(f"batch: stopped: {outcome.stopped}; {remaining} items have no line: raise "
              "--budget and run again with --resume", file=sys.stderr)
        return EXIT_INCOMPLETE
    return 0
