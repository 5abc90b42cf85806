"""The README's commands and examples stay true."""

import re
import shutil
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import yaml

from chorus import Config, Request, run_sync
from chorus.eval.outcomes import Outcome, OutcomeItem, write_outcomes
from chorus.eval.routers import fit_router

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, re.DOTALL)


def test_first_block_is_setup_then_tests() -> None:
    first = _blocks("bash")[0].splitlines()
    assert first[0].startswith("bash scripts/setup.sh && .venv/bin/chorus run")
    assert first[1].startswith("bash scripts/test.sh")
    for script in ("scripts/setup.sh", "scripts/test.sh"):
        assert (Path(__file__).resolve().parent.parent / script).is_file()


def test_yaml_example_builds() -> None:
    cfg = Config.from_text(_blocks("yaml")[0], "README.md")
    assert sorted(cfg.check()) == ["default", "gpt", "small"]


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("path", sorted(p.name for p in EXAMPLES.glob("*.yaml")
                                        if p.name != "measure.yaml"))
def test_every_example_config_builds(path: str) -> None:
    assert Config.load(EXAMPLES / path).check()


def test_vote_example_votes_with_the_default_votes_voters() -> None:
    default = yaml.safe_load(resources.files("chorus.config").joinpath("default.yaml")
                             .read_text("utf-8"))
    example = yaml.safe_load((EXAMPLES / "vote.yaml").read_text("utf-8"))
    voters = default["systems"]["vote"]["models"]
    keys = ("provider", "model", "system", "params")
    for name, system in example["systems"].items():
        members = system.get("models") or [system["model"]]
        assert set(members) <= set(voters), name
        if "models" in system:
            assert system["models"] == voters, name
    for name in voters:
        assert ({k: example["models"][name].get(k) for k in keys}
                == {k: default["models"][name].get(k) for k in keys}), name


def test_measure_example_builds_next_to_its_tables(tmp_path: Path) -> None:
    """examples/measure.yaml, copied next to an outcome table and a fitted router as the
    README says, builds every system, and its vote answers from the table."""
    models = ["gemini-1.5-pro-002", "gemini-1.5-flash-002", "Meta-Llama-3_1-70B-Instruct"]
    rng = np.random.default_rng(0)
    rows = [OutcomeItem(f"q{i}", f"question {i}?", None, "B",
                        {m: Outcome(float(j != 1 or i % 2 == 0), 0.001 * (3 - j),
                                    f"The answer is ({'B' if j != 1 or i % 2 == 0 else 'C'})", 5)
                         for j, m in enumerate(models)}) for i in range(20)]
    write_outcomes(tmp_path / "test.jsonl", rows)
    x = rng.normal(size=(20, 8))
    fit_router(rows, x / np.linalg.norm(x, axis=1, keepdims=True), kind="knn").save(
        tmp_path / "router")
    shutil.copy(EXAMPLES / "measure.yaml", tmp_path / "measure.yaml")
    cfg = Config.load(tmp_path / "measure.yaml")
    assert set(cfg.check()) >= {"vote3", "consensus", "routed"}
    answer = run_sync(cfg.get("vote3").complete(Request.of("question 1?")))
    assert answer.text == "B"
