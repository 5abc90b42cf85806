"""Do the default systems do their job on simple prompts?

    .venv/bin/python benchmarks/bench_default_systems.py [-c CONFIG] [--systems a,b]
        [--prompts benchmarks/prompts/simple.jsonl] [--limit N] [--json OUT]

Runs every system of a config (default: the embedded default config, on the two bundled
models) on each prompt of a small fixed set (facts, sentiments, two-part questions), in
one process so each model loads once, and reads from each answer's trace whether the
pattern did its job:

- vote: a majority formed (the largest group has at least 2 of the answers);
- consensus: when every member's answer names the expected answer, they agreed (no
  escalation); prompts where a member got it wrong are not counted;
- planner: the plan was used (no fallback) and had 2 or more steps for a two-part question;
- supervisor: the assignments were used and every review's verdict parsed;
- weighted: the judge's score parsed for every answer;
- router: facts went to the facts route and sentiments to the sentiment route;
- fanout: every model answered; pipeline: every step ran;
- cascade: the first stage's check decided (accepted or escalated, with a confidence);
- a model, fallback, guardrails: an answer came back (not blocked, not failed).

Whether the answer itself is right (the expected words appear) is reported apart: tiny
models answer badly sometimes; the patterns around them must still do their work.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

from chorus import Config, Request, call  # noqa: E402
from chorus.core.errors import ChorusError  # noqa: E402

PROMPTS = Path(__file__).resolve().parent / "prompts" / "simple.jsonl"

#: What a router should pick for each kind of prompt (others: any route).
ROUTE_OF = {"fact": "facts", "sentiment": "sentiment"}


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    kind: str
    prompt: str
    expect: tuple[str, ...]  # regexes, each must match (case-insensitive)

    def right(self, text: str) -> bool:
        return all(re.search(rf"\b(?:{e})\b", text, re.IGNORECASE) for e in self.expect)


#: A verdict: True (did its job), False (did not), None (not applicable), and why.
Verdict = tuple[bool | None, str]


def _vote(a: dict[str, Any], item: Item) -> Verdict:
    counts = [g.get("count", 0) for g in (a.get("tally") or {}).values()]
    top = max(counts, default=0)
    return top >= 2, f"largest group {top} of {sum(counts)}"


def _consensus(a: dict[str, Any], item: Item) -> Verdict:
    labels = list((a.get("groups") or {}).keys())
    if not labels or not all(item.right(label) for label in labels):
        return None, "members disagree on the facts"
    return a.get("escalated") is False, f"escalated={a.get('escalated')}"


def _planner(a: dict[str, Any], item: Item) -> Verdict:
    if a.get("fallback_reason"):
        return False, str(a["fallback_reason"])
    steps = len(a.get("plan") or [])
    need = 2 if item.kind == "two_part" else 1
    return steps >= need, f"{steps} steps"


def _supervisor(a: dict[str, Any], item: Item) -> Verdict:
    if a.get("fallback_reason"):
        return False, str(a["fallback_reason"])
    verdicts = [r.get("approved") for r in a.get("rounds") or []]
    ok = bool(verdicts) and all(isinstance(v, bool) for v in verdicts)
    return ok, f"verdicts {verdicts}"


def _weighted(a: dict[str, Any], item: Item) -> Verdict:
    if a.get("judge_failed"):
        return False, f"judge failed: {a['judge_failed']}"
    return bool(a.get("scores")), f"scores {a.get('scores')}"


def _router(a: dict[str, Any], item: Item) -> Verdict:
    want = ROUTE_OF.get(item.kind)
    route = a.get("route")
    return (route == want if want else route is not None), f"route {route}"


def _fanout(a: dict[str, Any], item: Item) -> Verdict:
    return not a.get("failed") and bool(a.get("answered")), f"answered {a.get('answered')}"


def _pipeline(a: dict[str, Any], item: Item) -> Verdict:
    return "failed_step" not in a and bool(a.get("steps")), f"{len(a.get('steps') or [])} steps"


def _cascade(a: dict[str, Any], item: Item) -> Verdict:
    first = (a.get("stages") or [{}])[0]
    ok = first.get("decision") in ("accepted", "escalated") and "confidence" in first
    return ok, f"first stage {first.get('decision')}"


def _answered(a: dict[str, Any], item: Item) -> Verdict:
    return True, "answered"


JOBS: dict[str, tuple[str, Callable[[dict[str, Any], Item], Verdict]]] = {
    "vote": ("a majority formed", _vote),
    "consensus": ("agreed when members agree", _consensus),
    "planner": ("plan used, >=2 steps for two things", _planner),
    "supervisor": ("assignments used, verdicts parsed", _supervisor),
    "weighted": ("judge scores parsed", _weighted),
    "router": ("facts/sentiment to their routes", _router),
    "fanout": ("every model answered", _fanout),
    "pipeline": ("every step ran", _pipeline),
    "cascade": ("first stage decided", _cascade),
}


def load_items(path: Path) -> list[Item]:
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            items.append(Item(d["id"], d["kind"], d["prompt"], tuple(d["expect"])))
    return items


async def run_one(model: Any, item: Item) -> dict[str, Any]:
    t0 = time.perf_counter()
    kind = model.kind
    what, judge = JOBS.get(kind, ("answered", _answered))
    try:
        done = await call(model, Request.of(item.prompt))
    except ChorusError as exc:
        return {"item": item.id, "kind": kind, "job": False, "why": f"error: {exc}",
                "right": False, "seconds": round(time.perf_counter() - t0, 2), "text": ""}
    attrs = done.trace.attributes if done.trace is not None else {}
    ok, why = judge(attrs, item)
    if ok and not done.text.strip():
        ok, why = False, "empty answer"
    return {"item": item.id, "kind": kind, "job": ok, "why": why, "right": item.right(done.text),
            "seconds": round(time.perf_counter() - t0, 2), "text": done.text}


Results = dict[str, list[dict[str, Any]]]


async def run(cfg: Config, systems: list[str], items: list[Item],
              progress: Callable[[str], None] = lambda line: None) -> Results:
    out: dict[str, list[dict[str, Any]]] = {}
    for name in systems:
        model = cfg.get(name)
        rows = []
        for item in items:
            row = await run_one(model, item)
            rows.append(row)
            progress(f"{name:11} {item.id:15} job={row['job']!s:5} right={row['right']!s:5} "
                     f"{row['seconds']:6.1f}s  {row['why'][:70]}")
        out[name] = rows
        await model.aclose()
    return out


def summarise(results: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    rows = []
    for name, runs in results.items():
        counted = [r for r in runs if r["job"] is not None]
        kind = runs[0]["kind"] if runs else ""
        rows.append({
            "system": name, "kind": kind, "job": JOBS.get(kind, ("answered", None))[0],
            "done": sum(bool(r["job"]) for r in counted), "counted": len(counted),
            "right": sum(r["right"] for r in runs), "n": len(runs),
            "seconds": round(sum(r["seconds"] for r in runs), 1),
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-c", "--config", help="config file (default: the embedded default)")
    ap.add_argument("--systems", help="comma-separated systems (default: all of the config)")
    ap.add_argument("--prompts", type=Path, default=PROMPTS, help="the prompt set (JSONL)")
    ap.add_argument("--limit", type=int, help="only the first N prompts")
    ap.add_argument("--json", type=Path, help="write every run and the summary here")
    ap.add_argument("--quiet", action="store_true", help="no line per run")
    args = ap.parse_args(argv)
    cfg = Config.load(args.config)
    systems = args.systems.split(",") if args.systems else cfg.system_names
    items = load_items(args.prompts)[: args.limit]
    started = time.perf_counter()
    results = asyncio.run(run(cfg, systems, items,
                              (lambda line: None) if args.quiet else
                              (lambda line: print(line, file=sys.stderr, flush=True))))
    summary = summarise(results)
    print(f"# {len(items)} prompts from {args.prompts.name}; {machine()}; "
          f"{time.perf_counter() - started:.0f}s")
    print(f"{'system':11} {'kind':11} {'did its job':>11} {'right':>7}  job")
    for r in summary:
        print(f"{r['system']:11} {r['kind']:11} {r['done']:>5}/{r['counted']:<5} "
              f"{r['right']:>3}/{r['n']:<3}  {r['job']}")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "runs": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
