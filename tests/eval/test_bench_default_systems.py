"""The default-systems benchmark, cheaply: its job checks on scripted systems whose
behaviour is known (the real run on the bundled models is in BENCHMARKS.md)."""

import json
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import yaml

from chorus.providers._bundled import GEMMA_TEMPLATE

ROOT = Path(__file__).resolve().parents[2]
TWO = ('{"steps": [{"id": "s1", "type": "default", "prompt": "Capital of France?", '
       '"depends_on": []}, {"id": "s2", "type": "default", "prompt": "Capital of Italy?", '
       '"depends_on": []}]}')
ONE = '{"steps": [{"id": "s1", "type": "default", "prompt": "All of it", "depends_on": []}]}'
CONFIG = f"""
models:
  a: {{provider: scripted, rules: {{capital: Paris and Rome}}, default: positive}}
  b: {{provider: scripted, rules: {{capital: Paris and Rome}}, default: positive}}
  c: {{provider: scripted, default: I like turtles}}
  two: {{provider: scripted, rules: {{'Plan:': '{TWO}'}}, default: Paris and Rome}}
  one: {{provider: scripted, rules: {{'Plan:': '{ONE}'}}, default: Paris and Rome}}
systems:
  agree: {{kind: vote, models: [a, b, c]}}
  split: {{kind: vote, models: [a, c]}}
  planner2: {{kind: planner, planner: two, executors: {{default: a}}}}
  planner1: {{kind: planner, planner: one, executors: {{default: a}}}}
  single: c
"""
PROMPTS = [
    {"id": "f", "kind": "fact", "prompt": "What is the capital of France?", "expect": ["paris"]},
    {"id": "s", "kind": "sentiment", "prompt": "Is 'great film' positive?",
     "expect": ["positive"]},
    {"id": "t", "kind": "two_part", "prompt": "Name the capital of France and of Italy.",
     "expect": ["paris", "rome"]},
]


def test_job_checks_on_known_systems(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(CONFIG)
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(p) + "\n" for p in PROMPTS))
    out = tmp_path / "r.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_default_systems.py"), "-c",
         str(tmp_path / "c.yaml"), "--prompts", str(tmp_path / "p.jsonl"), "--json", str(out),
         "--quiet"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    summary = {r["system"]: r for r in json.loads(out.read_text())["summary"]}
    got = {name: (r["done"], r["counted"], r["right"]) for name, r in summary.items()}
    assert got == {
        "agree": (3, 3, 3),      # a and b agree on every prompt
        "split": (0, 3, 3),      # two different answers: never a majority (order breaks it)
        "planner2": (3, 3, 2),   # a two-step plan: enough for every prompt
        "planner1": (2, 3, 2),   # one step: not enough for the two-part question
        "single": (3, 3, 0),     # answered, wrongly
    }
    table = proc.stdout.splitlines()
    assert table[0].startswith("# 3 prompts from p.jsonl")
    assert any(line.startswith("planner1") and "2/3" in line for line in table)


def _asked(text: str) -> set[str]:
    return {" ".join(q.lower().split()) for q in re.findall(r"Question: (.+?)\n", text)}


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _routed_examples(node: object) -> set[str]:
    """Every classifier example of a config, wherever it sits."""
    out: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "examples" and isinstance(value, dict):
                out |= {_norm(t) for texts in value.values() for t in texts}
            else:
                out |= _routed_examples(value)
    elif isinstance(node, list):
        for value in node:
            out |= _routed_examples(value)
    return out


def test_few_shot_and_router_examples_are_not_benchmark_prompts() -> None:
    # An example that is also a benchmark prompt hands the model its answer (or the
    # router its route) and inflates the figure.
    asked = _asked(GEMMA_TEMPLATE)
    routed = _routed_examples(yaml.safe_load(
        resources.files("chorus.config").joinpath("default.yaml").read_text("utf-8")))
    assert len(asked) >= 2 and len(routed) >= 8
    for name in ("simple.jsonl", "simple_heldout.jsonl"):
        lines = (ROOT / "benchmarks" / "prompts" / name).read_text().splitlines()
        prompts = {_norm(json.loads(line)["prompt"]) for line in lines if line.strip()}
        assert asked.isdisjoint(prompts), (name, asked & prompts)
        assert routed.isdisjoint(prompts), (name, routed & prompts)
