from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from chorus.cli.main import main
from chorus.config.builder import Config
from chorus.eval.bench import run_bench
from chorus.eval.ensembles import log_odds, plan_vote, replay_vote, vote_yaml
from chorus.eval.outcomes import Outcome, OutcomeItem, as_items, write_outcomes
from chorus.eval.scorers import make_scorer
from chorus.patterns.agreement import extractor

CHOICE = extractor("choice")


def _row(i: int, gold: str, answers: dict[str, str | None]) -> OutcomeItem:
    outcomes = {m: Outcome(None if a is None else float(a == gold), 0.01,
                           None if a is None else f"The answer is ({a})", 5)
                for m, a in answers.items()}
    return OutcomeItem(f"q{i}", f"question {i}?", None, gold, outcomes)


def _complementary(n: int = 12) -> list[OutcomeItem]:
    """a, b and c are each wrong on their own quarter of the items, with different wrong
    letters, so any two of them outvote the third; d is wrong 7 times out of 12."""
    rows = []
    for i in range(n):
        answers = {m: ("B" if i // 3 == j else "A") for j, m in enumerate("abc")}
        answers["c"] = "C" if i // 3 == 2 else "A"
        answers["d"] = "A" if i % 12 < 5 else "D"
        rows.append(_row(i, "A", answers))
    return rows


def test_log_odds_is_zero_at_even_odds_symmetric_and_finite_at_the_ends() -> None:
    assert log_odds(0.5) == 0.0
    assert log_odds(0.8) == pytest.approx(math.log(4.0))
    assert log_odds(0.2) == pytest.approx(-log_odds(0.8))
    assert math.isfinite(log_odds(1.0)) and math.isfinite(log_odds(0.0))


def test_replay_vote_weighs_answers_breaks_ties_by_order_and_scores_silence_as_zero() -> None:
    rows = [
        _row(0, "A", {"x": "A", "y": "B", "z": "B"}),  # two light votes beat one heavy
        _row(1, "A", {"x": "A", "y": "B", "z": None}),  # x 2.0 vs y 1.0
        _row(2, "B", {"x": "A", "y": "B", "z": "A"}),  # A wins 3.0 to 1.0: wrong
        _row(3, "A", {"x": None, "y": None, "z": None}),  # nobody answered
    ]
    weights = {"x": 2.0, "y": 1.5, "z": 1.0}
    assert replay_vote(rows, ["x", "y", "z"], weights, CHOICE) == pytest.approx(1 / 4)
    # Equal totals: the earliest member's answer wins.
    even = {"x": 1.0, "y": 1.0, "z": 1.0}
    assert replay_vote(rows[1:2], ["x", "y"], even, CHOICE) == 1.0
    assert replay_vote(rows[1:2], ["y", "x"], even, CHOICE) == 0.0
    assert replay_vote([], ["x"], even, CHOICE) == 0.0


def test_plan_picks_the_size_that_votes_best_and_leaves_out_coin_flippers() -> None:
    plan = plan_vote(_complementary(), extract=CHOICE)
    assert plan.models == ["a", "b", "c"]  # d (5/12) gets no positive weight
    assert set(plan.weights) == {"a", "b", "c"}
    assert all(w == pytest.approx(log_odds(0.75)) for w in plan.weights.values())
    assert plan.quality_by_size == {1: 0.75, 2: 0.75, 3: 1.0}
    assert plan.accuracy["d"] == pytest.approx(5 / 12)
    assert plan_vote(_complementary(), extract=CHOICE, max_models=2).models == ["a"]


def test_plan_refuses_a_table_where_nobody_beats_even_odds() -> None:
    rows = [_row(i, "A", {"a": "A" if i < 2 else "B", "b": "C"}) for i in range(6)]
    with pytest.raises(ValueError, match="no model scores above 0.5.*best: a at 0.333"):
        plan_vote(rows, extract=CHOICE)
    with pytest.raises(ValueError, match="empty"):
        plan_vote([], extract=CHOICE)
    with pytest.raises(ValueError, match="no outcomes recorded for 'z'; the table has a, b"):
        plan_vote(rows, extract=CHOICE, models=["a", "z"])


async def test_the_planned_yaml_runs_as_a_real_vote_with_the_replayed_quality(
        tmp_path: Path) -> None:
    rows = _complementary()
    write_outcomes(tmp_path / "t.jsonl", rows)
    plan = plan_vote(rows, extract=CHOICE)
    doc = yaml.safe_load(vote_yaml(plan, name="wv", extract="choice"))
    doc["models"] = {m: {"provider": "replay", "outcomes": str(tmp_path / "t.jsonl")}
                     for m in "abcd"}
    cfg = Config.from_text(yaml.safe_dump(doc))
    results = await run_bench({"wv": cfg.get("wv")}, as_items(rows), make_scorer("choice"))
    quality = sum(r.score or 0.0 for r in results["wv"]) / len(rows)
    assert quality == pytest.approx(plan.quality_by_size[len(plan.models)]) == 1.0


def test_cli_prints_the_plan_and_a_config_entry(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    write_outcomes(tmp_path / "t.jsonl", _complementary())
    assert main(["outcomes", "vote", str(tmp_path / "t.jsonl"), "--name", "wv"]) == 0
    out = capsys.readouterr().out
    assert "k=3 1.000" in out and "d: 0.417  weight -" in out
    entry = yaml.safe_load(out[out.index("systems:"):])["systems"]["wv"]
    assert entry["by"] == "weight" and entry["models"] == ["a", "b", "c"]


def test_cli_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [_row(i, "A", {"a": "B", "b": "C"}) for i in range(4)]
    write_outcomes(tmp_path / "t.jsonl", rows)
    assert main(["outcomes", "vote", str(tmp_path / "t.jsonl")]) != 0
    err = capsys.readouterr().err.strip()
    assert "no model scores above 0.5" in err and "Traceback" not in err
    assert len(err.splitlines()) == 1
