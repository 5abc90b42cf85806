"""Tool-call rate of the bundled local models with a forced tool choice: of 50 requests
(five function schemas, ten prompts each), how many answers are a call to the forced
function whose arguments are JSON valid for its schema. Also ``required`` with all five
tools offered: how often the model picks the tool the prompt is about.

    .venv/bin/python benchmarks/bench_tool_calls.py [--models smollm2-135m,gemma3-270m]
        [--modes forced,required]

"cut" counts the answers that ``max_tokens`` ended (``finish_reason: "length"``): a call
the grammar had not finished, so not valid JSON. Results are merged into
benchmarks/results/tool_calls.json by model and mode.

Real llama.cpp inference on the CPU, one request at a time, temperature 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import jsonschema

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine  # noqa: E402

from chorus.core.types import ForcedTool, Params, Request, Tool  # noqa: E402
from chorus.providers.local import LocalModel  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TOOLS = {
    "get_weather": Tool("get_weather", "The current weather in a city", {
        "type": "object", "properties": {"city": {"type": "string"},
                                         "unit": {"type": "string", "enum": ["c", "f"]}},
        "required": ["city"]}),
    "convert_currency": Tool("convert_currency", "Convert an amount between currencies", {
        "type": "object", "properties": {"amount": {"type": "number"},
                                         "from": {"type": "string"}, "to": {"type": "string"}},
        "required": ["amount", "from", "to"]}),
    "set_alarm": Tool("set_alarm", "Set an alarm", {
        "type": "object", "properties": {"hour": {"type": "integer", "minimum": 0,
                                                  "maximum": 23},
                                         "minute": {"type": "integer", "minimum": 0,
                                                    "maximum": 59},
                                         "label": {"type": "string"}},
        "required": ["hour", "minute"]}),
    "search_books": Tool("search_books", "Search a library catalogue", {
        "type": "object", "properties": {"query": {"type": "string"},
                                         "max_results": {"type": "integer"},
                                         "authors": {"type": "array",
                                                     "items": {"type": "string"}}},
        "required": ["query"]}),
    "send_email": Tool("send_email", "Send an email", {
        "type": "object", "properties": {"to": {"type": "string"},
                                         "subject": {"type": "string"},
                                         "urgent": {"type": "boolean"}},
        "required": ["to", "subject"]}),
}
PROMPTS = {
    "get_weather": ["What's the weather in {x}?", "Is it raining in {x} right now?",
                    "How warm is it in {x} today, in Fahrenheit?"],
    "convert_currency": ["How much is 120 {x} in euros?", "Convert 5 dollars to {x}.",
                         "What are 1,000 {x} worth in yen?"],
    "set_alarm": ["Wake me up at 6:45 for {x}.", "Set an alarm for 14:30 called {x}.",
                  "Remind me at 9 in the evening about {x}."],
    "search_books": ["Find books about {x}.", "Any novels on {x} by Tolstoy?",
                     "Show me three books on {x}."],
    "send_email": ["Email Jane that {x} is postponed.", "Send an urgent mail to bob@x.org "
                   "about {x}.", "Write to the team: {x} starts at noon."],
}
FILL = {"get_weather": ["Paris", "Tokyo", "Lima", "Oslo"],
        "convert_currency": ["pounds", "francs", "rupees", "pesos"],
        "set_alarm": ["yoga", "the meeting", "the train", "school"],
        "search_books": ["whales", "war", "chess", "gardening"],
        "send_email": ["the launch", "the review", "the party", "the audit"]}


def cases(n_per_tool: int = 10) -> list[tuple[str, str]]:
    out = []
    for name, templates in PROMPTS.items():
        for i in range(n_per_tool):
            out.append((name, templates[i % len(templates)].format(
                x=FILL[name][i % len(FILL[name])])))
    return out


async def run(model: LocalModel, mode: str) -> dict[str, float]:
    ok = right = valid_json = cut = 0
    started = time.perf_counter()
    items = cases()
    for name, prompt in items:
        choice = ForcedTool(name) if mode == "forced" else "required"
        out = await model.complete(Request.of(prompt, tools=tuple(TOOLS.values()),
                                              tool_choice=choice))
        cut += out.finish_reason == "length"
        if not out.tool_calls:
            continue
        call = out.tool_calls[0]
        try:
            args = json.loads(call.arguments)
        except ValueError:
            continue
        valid_json += 1
        if call.name not in TOOLS:
            continue
        try:
            jsonschema.validate(args, TOOLS[call.name].parameters)
        except jsonschema.ValidationError:
            continue
        ok += 1
        right += call.name == name
    n = len(items)
    return {"requests": n, "valid_json": valid_json / n, "valid_for_schema": ok / n,
            "intended_tool": right / n, "cut_by_max_tokens": cut / n,
            "s_per_request": (time.perf_counter() - started) / n}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", default="smollm2-135m,gemma3-270m")
    ap.add_argument("--modes", default="forced,required")
    args = ap.parse_args()
    results: dict[str, dict[str, float]] = {}
    for name in args.models.split(","):
        model = LocalModel(name, name, params=Params(temperature=0, max_tokens=128, seed=0))
        for mode in args.modes.split(","):
            results[f"{name} {mode}"] = asyncio.run(run(model, mode))
    cmd = "python benchmarks/bench_tool_calls.py " + " ".join(sys.argv[1:])
    print(f"\n`{cmd.strip()}` on {machine()}\n")
    print("| model, tool_choice | requests | valid JSON | valid for the schema | "
          "the intended tool | cut by max_tokens | s per request |")
    print("|---|---|---|---|---|---|---|")
    for key, r in results.items():
        print(f"| {key} | {r['requests']:.0f} | {r['valid_json']:.0%} | "
              f"{r['valid_for_schema']:.0%} | {r['intended_tool']:.0%} | "
              f"{r['cut_by_max_tokens']:.0%} | {r['s_per_request']:.2f} |")
    out = ROOT / "benchmarks" / "results" / "tool_calls.json"
    old = json.loads(out.read_text()) if out.is_file() else {}
    runs = old.get("runs", {})
    for key, r in old.get("results", {}).items():  # the file's earlier shape
        runs.setdefault(key, {"command": old["command"], "machine": old["machine"], **r})
    for key, r in results.items():  # each model and mode: its latest run
        runs[key] = {"command": cmd.strip(), "machine": machine(), **r}
    out.write_text(json.dumps({"runs": runs}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
