from __future__ import annotations

from pathlib import Path

import pytest

from chorus.config.builder import Config
from chorus.core.errors import BadRequestError, ConfigError
from chorus.core.types import Request
from chorus.eval.outcomes import Outcome, OutcomeItem, write_outcomes
from chorus.eval.replay import ReplayModel
from chorus.patterns.vote import Vote

ROWS = [
    OutcomeItem("q1", "What is 2+2?", None, "4",
                {"big": Outcome(1.0, 0.03, "4", 1), "small": Outcome(0.0, 0.001, "5", 1)}),
    OutcomeItem("q2", "Capital of France?", None, "Paris",
                {"big": Outcome(1.0, 0.02, "Paris", 2), "small": Outcome(None, None, None, None)}),
]


async def test_answers_as_recorded_by_id_or_prompt() -> None:
    big = ReplayModel("big", ROWS)
    by_id = await big.complete(Request(Request.of("anything").messages, metadata={"item_id": "q1"}))
    assert by_id.text == "4" and by_id.cost_usd == 0.03 and by_id.usage.output_tokens == 1
    assert by_id.trace is not None and by_id.trace.cost_usd == 0.03
    assert by_id.trace.attributes["recorded_score"] == 1.0
    by_prompt = await big.complete(Request.of("Capital of France?"))
    assert by_prompt.text == "Paris" and by_prompt.cost_usd == 0.02
    small = ReplayModel("weak", ROWS, model="small")
    empty = await small.complete(Request.of("Capital of France?"))
    assert empty.text == "" and empty.cost_usd == 0.0


async def test_unknown_item_or_model_is_a_typed_error() -> None:
    with pytest.raises(BadRequestError, match="no recorded outcome"):
        await ReplayModel("big", ROWS).complete(Request.of("never asked"))
    with pytest.raises(BadRequestError, match="no outcome for 'huge'"):
        await ReplayModel("huge", ROWS).complete(Request.of("What is 2+2?"))


async def test_patterns_over_replay_sum_recorded_costs() -> None:
    vote = Vote("v", [ReplayModel("a", ROWS, model="big"), ReplayModel("b", ROWS, model="big"),
                      ReplayModel("c", ROWS, model="small")])
    answer = await vote.complete(Request.of("What is 2+2?"))
    assert answer.text == "4"
    assert answer.cost_usd == pytest.approx(0.03 + 0.03 + 0.001)


async def test_yaml(tmp_path: Path) -> None:
    write_outcomes(tmp_path / "t.jsonl", ROWS)
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("models:\n  big: {provider: replay, outcomes: t.jsonl}\n"
                        "  weak: {provider: replay, outcomes: t.jsonl, model: small}\n")
    cfg = Config.load(cfg_file)
    assert (await cfg.get("weak").complete(Request.of("What is 2+2?"))).text == "5"
    cfg_file.write_text("models:\n  big: {provider: replay, outcomes: missing.jsonl}\n")
    with pytest.raises(ConfigError, match="outcomes: outcome table .* does not exist"):
        Config.load(cfg_file).get("big")
