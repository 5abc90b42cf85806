"""``chorus batch --engine ray`` on a real local Ray cluster (a head and one more node),
over a real OpenAI-compatible upstream, with a real Redis: see ``_ray_scenario.py``."""

import collections
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCENARIO = Path(__file__).with_name("_ray_scenario.py")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    if importlib.util.find_spec("ray") is None:
        pytest.skip("ray is not installed (the setup installs the 'ray' extra)")
    for tool in ("unshare", "ip", "redis-server", "redis-cli"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    work = tmp_path_factory.mktemp("ray")
    # A network namespace where loopback is the only interface (as root; else in a user
    # namespace of its own, mapped to root).
    unshare = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]
    run = subprocess.run([*unshare, sys.executable, str(SCENARIO), str(work)],
                         capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, f"{run.stdout[-2000:]}\n{run.stderr[-3000:]}"
    return work, json.loads((work / "result.json").read_text())


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_worker_killed_mid_run_costs_no_item_and_duplicates_none(
        scenario: tuple[Path, dict[str, Any]]) -> None:
    work, result = scenario
    kill = result["kill"]
    assert kill["rc"] == 0, kill["log"]
    assert "a Ray worker died" in kill["log"]
    assert 100 <= result["lines_at_kill"] < 1000
    recs = _records(work / "kill.out.jsonl")
    counts = collections.Counter(r["id"] for r in recs)
    assert set(counts) == {f"item-{i}" for i in range(2000)}
    assert max(counts.values()) == 1
    # Each answer is the upstream's answer to that item's own prompt.
    assert all(r["text"] == f"echo: question {r['id'][5:]}" for r in recs)
    assert all(r["model"] == "up" and r["cost_usd"] == pytest.approx(0.006) for r in recs)


def test_one_budget_across_workers_through_redis(
        scenario: tuple[Path, dict[str, Any]]) -> None:
    work, result = scenario
    run = result["budget"]
    assert run["rc"] == 3, run["stderr"]
    assert "stopped: budget reached" in run["stderr"]
    recs = _records(work / "budget.out.jsonl")
    spent = sum(r["cost_usd"] for r in recs)
    # Calls cost $0.006 and reserve $0.008: the run stops only when the next reservation
    # no longer fits beside what both workers spent, and never passes $1.00.
    assert 1.0 - 0.008 < spent <= 1.0 + 1e-9
    assert len(recs) == len({r["id"] for r in recs}) == 166
    # The workers reserve from one counter in Redis, which holds exactly what was spent.
    (total,) = result["budget_keys"].values()
    assert float(total) == pytest.approx(spent)


def test_bench_on_ray_scores_the_workers_answers(
        scenario: tuple[Path, dict[str, Any]]) -> None:
    work, result = scenario
    assert result["bench"]["rc"] == 0, result["bench"]["stderr"]
    rows = {r["system"]: r for r in json.loads((work / "bench.json").read_text())}
    assert set(rows) == {"job", "up"}
    for row in rows.values():
        assert row["items"] == 200 and row["errors"] == 0
        assert row["quality"] == pytest.approx(0.5)  # the references right on even items
        assert row["cost_usd"] == pytest.approx(200 * 0.006)
        assert row["calls_per_item"] == 1.0


def test_a_yaml_rate_limit_holds_across_workers_through_redis(
        scenario: tuple[Path, dict[str, Any]]) -> None:
    work, result = scenario
    run = result["paced"]
    assert run["rc"] == 0, run["stderr"]
    assert len(_records(work / "paced.out.jsonl")) == 100
    # 20 calls a second with a burst of 20 for the cluster: 100 calls take at least 4 s.
    # Were the bucket per worker, two workers would be done in about 1.5 s.
    seconds = float(re.search(r"; ([0-9.]+)s, ", run["stdout"]).group(1))  # type: ignore[union-attr]
    assert seconds >= 3.5, run["stdout"]


def test_workers_get_the_variables_the_yaml_reads_from_the_driver(
        scenario: tuple[Path, dict[str, Any]]) -> None:
    work, result = scenario
    assert result["greet"]["rc"] == 0, result["greet"]["stderr"]
    recs = _records(work / "greet.out.jsonl")
    assert len(recs) == 20 and {r["text"] for r in recs} == {"hello from the driver"}
