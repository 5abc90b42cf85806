from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chorus.config.builder import Config
from chorus.core.errors import BadRequestError, ChorusError, ConfigError
from chorus.core.model import stream_or_complete
from chorus.core.types import Completion, Params, Request, Tool, ToolCall, ToolCallDelta
from chorus.eval.bench import ItemResult, to_outcomes
from chorus.eval.datasets import Item
from chorus.eval.outcomes import Outcome, OutcomeItem, read_outcomes, write_outcomes
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
    with pytest.raises(BadRequestError, match="no recorded outcome for this prompt"):
        await ReplayModel("big", ROWS).complete(Request.of("never asked"))
    lost = Request(Request.of("never asked").messages, metadata={"item_id": "q9"})
    with pytest.raises(BadRequestError, match=r"no recorded outcome for this item_id or "
                       rf"prompt \(the table has {len(ROWS)} items"):
        await ReplayModel("big", ROWS).complete(lost)
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


# -- recorded tool calls ---------------------------------------------------------------------

WEATHER = Tool("get_weather", "Weather", {"type": "object",
                                          "properties": {"city": {"type": "string"}}})
TOOL_ROW = ('{"id": "w1", "prompt": "Weather in Paris?", "outcomes": {"agent": {'
            '"score": 1, "cost_usd": 0.002, "response": null, "output_tokens": 9, '
            '"tool_calls": [{"id": "call_7", "name": "get_weather", '
            '"arguments": {"city": "Paris"}}, {"name": "get_weather", '
            '"arguments": "{\\"city\\": \\"Lyon\\"}"}]}}}\n')


def _asks_weather(**params: Any) -> Request:
    return Request(Request.of("Weather in Paris?").messages,
                   params=Params(tools=(WEATHER,), **params))


async def test_recorded_tool_calls_are_answered(tmp_path: Path) -> None:
    (tmp_path / "t.jsonl").write_text(TOOL_ROW)
    rows = read_outcomes(tmp_path / "t.jsonl")
    agent = ReplayModel("agent", rows)
    answer = await agent.complete(_asks_weather())
    assert answer.finish_reason == "tool_calls" and answer.text == ""
    assert [(c.name, c.args()) for c in answer.tool_calls] == [
        ("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Lyon"})]
    assert answer.tool_calls[0].id == "call_7"  # as recorded
    assert answer.tool_calls[1].id and answer.tool_calls[1].id != "call_7"  # one is made
    assert answer.cost_usd == 0.002
    # Streamed: the calls arrive as tool-call pieces, then the whole answer.
    events = [e async for e in stream_or_complete(agent, _asks_weather())]
    pieces = [e for e in events if isinstance(e, ToolCallDelta)]
    assert [(p.index, p.name) for p in pieces] == [(0, "get_weather"), (1, "get_weather")]
    assert isinstance(events[-1], Completion) and events[-1].finish_reason == "tool_calls"


async def test_a_table_with_tool_calls_round_trips_and_old_rows_stay_as_they_were(
        tmp_path: Path) -> None:
    (tmp_path / "t.jsonl").write_text(TOOL_ROW)
    write_outcomes(tmp_path / "out.jsonl", read_outcomes(tmp_path / "t.jsonl"))
    (row,) = read_outcomes(tmp_path / "out.jsonl")
    calls = row.outcomes["agent"].tool_calls
    assert [c.to_dict()["arguments"] for c in calls] == ['{"city": "Paris"}',
                                                         '{"city": "Lyon"}']
    assert calls[0] == ToolCall("call_7", "get_weather", '{"city": "Paris"}')
    write_outcomes(tmp_path / "plain.jsonl", ROWS)
    assert "tool_calls" not in (tmp_path / "plain.jsonl").read_text()


async def test_a_recorded_call_to_a_tool_the_request_does_not_offer_is_refused(
        tmp_path: Path) -> None:
    (tmp_path / "t.jsonl").write_text(TOOL_ROW)
    agent = ReplayModel("agent", read_outcomes(tmp_path / "t.jsonl"))
    with pytest.raises(BadRequestError, match="calls get_weather, which this request does "
                                              "not offer"):
        await agent.complete(Request.of("Weather in Paris?"))
    with pytest.raises(BadRequestError, match="tool_choice"):
        await agent.complete(_asks_weather(tool_choice="none"))


@pytest.mark.parametrize(("calls", "message"), [
    ('{"name": "f"}', "tool_calls must be a list"),
    ('[{"arguments": {}}]', r"tool_calls\[0\]: name must be a non-empty string"),
    ('[{"name": "f", "arguments": 3}]', r"tool_calls\[0\]: arguments must be"),
    ('[{"name": "f", "args": {}}]', r"tool_calls\[0\]: unknown key\(s\) args"),
])
def test_a_malformed_recorded_call_is_one_clear_error(tmp_path: Path, calls: str,
                                                     message: str) -> None:
    (tmp_path / "t.jsonl").write_text(
        '{"id": "w1", "prompt": "p", "outcomes": {"m": {"tool_calls": ' + calls + '}}}\n')
    with pytest.raises(ChorusError, match=message):
        read_outcomes(tmp_path / "t.jsonl")


def test_bench_records_tool_calls() -> None:
    item = Item("w1", "Weather in Paris?")
    call = ToolCall("c1", "get_weather", '{"city": "Paris"}')
    result = ItemResult("agent", "w1", None, 0.0, 0.1, 1, "", "agent", 3, None, (call,))
    (row,) = to_outcomes([item], {"agent": [result]})
    assert row.outcomes["agent"].tool_calls == (call,)
