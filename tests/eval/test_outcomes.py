from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from chorus.core.errors import ChorusError
from chorus.eval.convert import MMLU_PRO_OUTPUT_PRICES, mmlu_pro_outcomes, routellm_outcomes
from chorus.eval.outcomes import (
    Outcome,
    OutcomeItem,
    matrices,
    models_of,
    read_outcomes,
    unrecorded,
    write_outcomes,
)
from tests.eval._data import small_mmlu_pro, small_routellm_gsm8k

KEYS = {"id", "prompt", "category", "reference", "outcomes"}
OUTCOME_KEYS = {"score", "cost_usd", "response", "output_tokens"}


def test_round_trip_is_exactly_the_documented_form(tmp_path: Path) -> None:
    rows = [OutcomeItem("1", "q", None, "4", {"a": Outcome(1.0, 0.01, "4", 1),
                                              "b": Outcome(None, None, None, None)})]
    p = tmp_path / "t.jsonl"
    assert write_outcomes(p, rows) == 1
    raw = json.loads(p.read_text())
    assert set(raw) == KEYS and set(raw["outcomes"]["a"]) == OUTCOME_KEYS
    assert read_outcomes(p) == rows
    scores, costs = matrices(rows, ["a", "b"])
    assert scores[0, 0] == 1.0 and np.isnan(scores[0, 1]) and np.isnan(costs[0, 1])


def test_bad_rows_are_reported_with_line(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    p.write_text('{"id": "1", "prompt": "q", "outcomes": {"a": {"score": "high"}}}\n')
    with pytest.raises(ChorusError, match=r"t.jsonl:1: a: score must be a number"):
        read_outcomes(p)
    p.write_text('{"id": "1", "prompt": "q", "outcomes": {"a": {"score": 7}}}\n')
    with pytest.raises(ChorusError, match=r"t.jsonl:1: a: score must lie in \[0, 1\] .*got 7"):
        read_outcomes(p)
    p.write_text('{"id": "1", "prompt": "q", "outcomes": {"a": {"cost_usd": -0.1}}}\n')
    with pytest.raises(ChorusError, match=r"a: cost_usd must be at least 0, got -0.1"):
        read_outcomes(p)
    p.write_text('{"id": "1", "prompt": "q"}\n')
    with pytest.raises(ChorusError, match="missing key 'outcomes'"):
        read_outcomes(p)
    # A row cut short (a copy interrupted): the file's line and the column.
    p.write_text('{"id": "1", "prompt": "q", "outcomes": {}}\n{"id": "2", "prompt": "q"\n')
    with pytest.raises(ChorusError, match=r"t.jsonl:2: not valid JSON \(Expecting ',' "
                                          r"delimiter, column 26\)"):
        read_outcomes(p)


def test_mmlu_pro_converter_scores_letters_and_prices_output(tmp_path: Path) -> None:
    folder = small_mmlu_pro(tmp_path / "mp", 40)
    rows = mmlu_pro_outcomes(folder)
    assert len(rows) == 40 and len(models_of(rows)) == 29
    checked = 0
    for row in rows:
        assert row.reference is not None and row.reference in "ABCDEFGHIJ"
        assert "\nA. " in row.prompt
        for model, o in row.outcomes.items():
            if o.response is None:
                assert o.score == 0.0
                continue
            letter = o.response[-2]
            assert o.score == float(letter == row.reference)
            if o.output_tokens is not None:
                assert o.cost_usd == pytest.approx(
                    o.output_tokens * MMLU_PRO_OUTPUT_PRICES[model] / 1e6)
                checked += 1
    assert checked > 100
    only = mmlu_pro_outcomes(folder, models=["gemini-1.5-pro-002", "gemma-7b"])
    assert models_of(only) == ["gemini-1.5-pro-002", "gemma-7b"]
    with pytest.raises(ChorusError, match=r"no model\(s\) gpt-9; it has .*gemma-7b"):
        mmlu_pro_outcomes(folder, models=["gpt-9"])


def test_routellm_converter_excludes_contaminated_prompts(tmp_path: Path) -> None:
    folder = small_routellm_gsm8k(tmp_path, 30)
    rows = routellm_outcomes(folder, "gsm8k")
    contaminated = {str(json.loads(line)["eval_idx"]) for line in
                    (folder / "gsm8k" / "contaminated_prompts.jsonl").read_text().splitlines()}
    expected = [i for i in range(30) if str(i) not in contaminated]
    assert [r.id for r in rows] == [f"gsm8k-{i}" for i in expected]
    assert len(rows) < 30
    weak, strong = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"
    for r in rows:
        assert set(r.outcomes) == {weak, strong}
        assert r.reference is not None and r.reference.replace(",", "").isdigit()
        # GPT-4 costs far more per call than Mixtral at list prices.
        assert r.outcomes[strong].cost_usd > 5 * r.outcomes[weak].cost_usd  # type: ignore[operator]
        assert r.outcomes[weak].response


def test_unrecorded_names_each_model_with_missing_scores_or_costs() -> None:
    rows = [OutcomeItem(str(i), "q", None, None,
                        {"a": Outcome(1.0, 0.1), "b": Outcome(None if i < 2 else 0.0,
                                                               None if i == 0 else 0.2)})
            for i in range(5)]
    lines = unrecorded(rows, ["a", "b"], no_score="counted as wrong", no_cost="as $0")
    assert lines == ["b: no score on 2 of 5 items (counted as wrong), "
                     "no cost_usd on 1 of 5 items (as $0)"]
    assert unrecorded(rows, ["a"], no_score="x", no_cost="y") == []
    # A row without the model at all is neither a missing score nor a missing cost.
    rows[3] = OutcomeItem("3", "q", None, None, {"a": Outcome(1.0, 0.1)})
    assert unrecorded(rows, ["a", "b"], no_score="counted as wrong", no_cost="as $0") == [
        "b: no outcome on 1 of 5 items (counted as wrong; as $0), no score on 2 of 5 items "
        "(counted as wrong), no cost_usd on 1 of 5 items (as $0)"]
