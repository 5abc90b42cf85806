"""Cascade: each confidence check accepting at stage 1 or escalating, costs over stages."""

from __future__ import annotations

import json

import pytest

from chorus.config import Config
from chorus.core.errors import (
    AllModelsFailed,
    BudgetExceeded,
    ConfigError,
    DeadlineExceeded,
    ServerError,
)
from chorus.core.pricing import Price
from chorus.core.types import Completion, Request, TextDelta, Usage
from chorus.patterns.cascade import (
    AgreementCheck,
    Cascade,
    FunctionCheck,
    JudgeCheck,
    LogprobCheck,
    Stage,
    accept,
    agreement,
    as_confidence,
    escalates_on,
    judge_score,
)
from chorus.patterns.fanout import FanOut
from chorus.providers.scripted import ScriptedModel

Q = Request.of("What is the capital of France?")
USAGE = Usage(100, 10)


def priced(name: str, per_million: float, **kw: object) -> ScriptedModel:
    """A scripted model whose every call costs ``110 * per_million / 1e6`` dollars."""
    return ScriptedModel(name, usage=USAGE, price=Price(per_million, per_million),
                         **kw)  # type: ignore[arg-type]


def is_paris(request: Request, completion: Completion) -> bool:
    return "paris" in completion.text.lower()


# -- decisions, no event loop ------------------------------------------------------------


def test_agreement_share_and_winner() -> None:
    assert agreement(["Paris", "paris.", "Lyon"]) == (pytest.approx(2 / 3), 0)
    assert agreement(["Lyon", " PARIS ", "Paris!"]) == (pytest.approx(2 / 3), 1)
    assert agreement(["a", "b"]) == (0.5, 0)  # a tie goes to the earliest
    assert agreement(["a", "a"], total=4) == (0.5, 0)  # failed samples count against
    assert agreement([]) == (0.0, -1)


@pytest.mark.parametrize(
    ("value", "score"),
    [({"score": 8}, 8.0), ({"score": "7"}, 7.0), ({"score": 12}, 10.0), ({"score": -1}, 0.0),
     ({"score": 6.5}, 6.5)],
)
def test_judge_score(value: object, score: float) -> None:
    assert judge_score(value) == score


@pytest.mark.parametrize("value", [{"score": True}, {}, [], {"score": "high"}, None])
def test_judge_score_rejects_answers_without_a_number(value: object) -> None:
    with pytest.raises(ValueError, match="score"):
        judge_score(value)


def test_as_confidence_and_accept() -> None:
    assert as_confidence(True) == 1.0
    assert as_confidence(False) == 0.0
    assert as_confidence(0.25) == 0.25
    with pytest.raises(TypeError, match="bool or float"):
        as_confidence("yes")
    assert accept(0.7, 0.67)
    assert accept(0.67, 0.67)
    assert not accept(0.5, 0.67)
    assert not accept(None, -100)


def test_escalates_on_model_failures_only() -> None:
    assert escalates_on(ServerError("down"))
    assert escalates_on(AllModelsFailed("fan", {}))
    assert not escalates_on(DeadlineExceeded("late"))
    assert not escalates_on(BudgetExceeded("broke"))


def test_only_the_last_stage_has_no_check() -> None:
    a, b = ScriptedModel("a", default="x"), ScriptedModel("b", default="y")
    with pytest.raises(ValueError, match="stage 0 needs a check"):
        Cascade("c", [Stage(a), Stage(b)])
    with pytest.raises(ValueError, match="remove its check"):
        Cascade("c", [Stage(a, LogprobCheck()), Stage(b, LogprobCheck())])


# -- agreement ---------------------------------------------------------------------------


async def test_agreement_accepts_at_stage_one() -> None:
    small = priced("small", 1.0, replies=["Paris", "paris.", "Lyon"])
    big = priced("big", 100.0, default="Paris")
    cascade = Cascade("c", [Stage(small, AgreementCheck(3, 0.6, temperature=0.8)), Stage(big)])
    out = await cascade.complete(Q)
    assert out.text == "Paris"
    assert out.model == "small"
    assert big.calls == []
    assert [r.params.seed for r in small.calls] == [0, 1, 2]
    assert {r.params.temperature for r in small.calls} == {0.8}
    assert out.cost_usd == pytest.approx(3 * 110 * 1.0 / 1e6)
    assert out.trace is not None
    (record,) = out.trace.attributes["stages"]
    assert record["decision"] == "accepted"
    assert record["confidence"] == pytest.approx(2 / 3)
    assert record["note"] == "2 of 3 samples agree"


async def test_agreement_escalates_and_costs_every_stage() -> None:
    small = priced("small", 1.0, replies=["Paris", "Lyon", "Rome"])
    big = priced("big", 100.0, default="Paris")
    out = await Cascade("c", [Stage(small, AgreementCheck(3, 0.6)), Stage(big)]).complete(Q)
    assert out.text == "Paris"
    assert out.model == "big"
    assert out.cost_usd == pytest.approx((3 * 110 * 1.0 + 110 * 100.0) / 1e6)
    assert out.usage == Usage(4 * 100, 4 * 10)
    assert out.trace is not None
    stages = out.trace.attributes["stages"]
    assert [s["decision"] for s in stages] == ["escalated", "accepted"]
    assert stages[0]["confidence"] == pytest.approx(1 / 3)
    assert out.trace.attributes["answered_by"] == "big"
    assert len(out.trace.children) == 4


async def test_a_cascade_streams_its_last_stage_piece_by_piece() -> None:
    small = ScriptedModel("small", replies=["Paris", "Lyon", "Rome"])
    big = ScriptedModel("big", default="It is Paris, in France.")
    cascade = Cascade("c", [Stage(small, AgreementCheck(3, 0.6)), Stage(big)])
    events = [e async for e in cascade.stream(Q)]
    pieces = [e.text for e in events if isinstance(e, TextDelta)]
    assert pieces == ["It", " is", " Paris,", " in", " France."]  # big's own pieces
    final = events[-1]
    assert isinstance(final, Completion) and final.model == "big"
    assert final.trace is not None and final.trace.attributes["answered_by"] == "big"
    # An earlier stage's answer is sent whole once accepted.
    sure = ScriptedModel("sure", default="Paris")
    events = [e async for e in Cascade("c", [Stage(sure, AgreementCheck(3, 0.6)),
                                            Stage(big)]).stream(Q)]
    assert events[0] == TextDelta("Paris", "sure") and len(events) == 2


async def test_agreement_counts_failed_samples_against() -> None:
    small = ScriptedModel("small", replies=["Paris", ServerError("down"), "Paris"])
    big = ScriptedModel("big", default="Paris!")
    out = await Cascade("c", [Stage(small, AgreementCheck(3, 0.9)), Stage(big)]).complete(Q)
    assert out.model == "big"
    assert out.trace is not None
    assert out.trace.attributes["stages"][0]["confidence"] == pytest.approx(2 / 3)
    assert sum(1 for s in out.trace.children if s.error) == 1


# -- judge -------------------------------------------------------------------------------


async def test_judge_accepts_at_stage_one() -> None:
    small = priced("small", 1.0, default="Paris")
    judge = priced("judge", 10.0, default='{"score": 9}')
    big = priced("big", 100.0, default="Paris")
    out = await Cascade("c", [Stage(small, JudgeCheck(judge, 7)), Stage(big)]).complete(Q)
    assert out.text == "Paris"
    assert big.calls == []
    (asked,) = judge.calls
    assert asked.params.response_format is not None
    assert "Paris" in asked.prompt and "capital of France" in asked.prompt
    assert out.cost_usd == pytest.approx(110 * (1.0 + 10.0) / 1e6)
    assert out.trace is not None
    assert out.trace.attributes["stages"][0]["confidence"] == 9.0


async def test_judge_escalates_on_a_low_score() -> None:
    small = priced("small", 1.0, default="Lyon")
    judge = priced("judge", 10.0, default='{"score": 2}')
    big = priced("big", 100.0, default="Paris")
    out = await Cascade("c", [Stage(small, JudgeCheck(judge, 7)), Stage(big)]).complete(Q)
    assert out.text == "Paris"
    assert out.cost_usd == pytest.approx(110 * (1.0 + 10.0 + 100.0) / 1e6)
    assert out.trace is not None
    assert out.trace.attributes["stages"][0]["decision"] == "escalated"


async def test_a_judge_that_answers_garbage_escalates_and_its_calls_are_paid() -> None:
    small = priced("small", 1.0, default="Lyon")
    judge = priced("judge", 10.0, default="I think it is fine")
    big = priced("big", 100.0, default="Paris")
    out = await Cascade("c", [Stage(small, JudgeCheck(judge, 7)), Stage(big)]).complete(Q)
    assert out.text == "Paris"
    assert len(judge.calls) == 2  # the answer and the repair round trip
    assert out.cost_usd == pytest.approx(110 * (1.0 + 2 * 10.0 + 100.0) / 1e6)
    assert out.trace is not None
    record = out.trace.attributes["stages"][0]
    assert record["confidence"] is None
    assert "judge failed" in record["note"]


async def test_a_stage_that_fails_after_spending_is_paid_for() -> None:
    """A vote stage whose answers hold no label fails, but its two calls were made: the
    cascade's cost and usage count them, and so does its error when every stage fails."""
    from chorus.patterns.vote import Vote

    a = priced("a", 1.0, default="no idea at all")
    b = priced("b", 2.0, default="unsure")
    big = priced("big", 100.0, default="The answer is (B)")
    stage = Vote("cheap", [a, b], extract="choice")
    out = await Cascade("c", [Stage(stage, FunctionCheck(lambda r, c: True)),
                              Stage(big)]).complete(Q)
    assert out.text == "The answer is (B)"
    assert len(a.calls) == len(b.calls) == 1
    assert out.cost_usd == pytest.approx(110 * (1.0 + 2.0 + 100.0) / 1e6)
    assert out.usage.output_tokens == 3 * USAGE.output_tokens
    assert out.trace is not None
    assert out.trace.cost_usd == pytest.approx(out.cost_usd)
    assert out.trace.attributes["stages"][0]["decision"] == "failed"
    # Every stage fails: the error's trace carries what was spent.
    broke = priced("broke", 100.0, fail_with="server_error", fail_times=-1)
    with pytest.raises(AllModelsFailed) as info:
        await Cascade("c", [Stage(Vote("cheap", [a, b], extract="choice"),
                                  FunctionCheck(lambda r, c: True)), Stage(broke)]).complete(Q)
    assert info.value.trace is not None
    assert info.value.trace.cost_usd == pytest.approx(110 * 3.0 / 1e6)


# -- log-probability ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("logprob", "winner", "note"),
    [(-0.2, "small", None), (-2.5, "big", None), (None, "big", "no log-probabilities")],
)
async def test_logprob(logprob: float | None, winner: str, note: str | None) -> None:
    small = ScriptedModel("small", default="Paris", logprob=logprob)
    big = ScriptedModel("big", default="Paris")
    out = await Cascade("c", [Stage(small, LogprobCheck(-1.0)), Stage(big)]).complete(Q)
    assert out.model == winner
    assert out.trace is not None
    record = out.trace.attributes["stages"][0]
    assert record["confidence"] == logprob
    if note:
        assert note in record["note"]


# -- function ----------------------------------------------------------------------------


async def test_function_check_bool() -> None:
    small = ScriptedModel("small", default="Paris")
    big = ScriptedModel("big", default="Paris")
    out = await Cascade("c", [Stage(small, FunctionCheck(is_paris)), Stage(big)]).complete(Q)
    assert out.model == "small"
    small2 = ScriptedModel("small", default="Lyon")
    out = await Cascade("c", [Stage(small2, FunctionCheck(is_paris)), Stage(big)]).complete(Q)
    assert out.model == "big"


async def test_function_check_async_float_against_threshold() -> None:
    async def half(request: Request, completion: Completion) -> float:
        return 0.5

    small = ScriptedModel("small", default="Paris")
    big = ScriptedModel("big", default="Paris")
    out = await Cascade("c", [Stage(small, FunctionCheck(half, 0.4)), Stage(big)]).complete(Q)
    assert out.model == "small"
    out = await Cascade("c", [Stage(small, FunctionCheck(half, 0.6)), Stage(big)]).complete(Q)
    assert out.model == "big"


async def test_function_check_returning_garbage_is_an_error() -> None:
    small, big = ScriptedModel("s", default="x"), ScriptedModel("b", default="y")
    check = FunctionCheck(lambda r, c: "yes")
    with pytest.raises(ConfigError, match="bool or float"):
        await Cascade("c", [Stage(small, check), Stage(big)]).complete(Q)


# -- failures ----------------------------------------------------------------------------


async def test_a_failing_stage_escalates() -> None:
    small = ScriptedModel("small", fail_with="server_error", fail_times=-1)
    big = ScriptedModel("big", default="Paris")
    out = await Cascade("c", [Stage(small, LogprobCheck()), Stage(big)]).complete(Q)
    assert out.model == "big"
    assert out.trace is not None
    assert out.trace.attributes["stages"][0]["decision"] == "failed"
    assert [s.error is not None for s in out.trace.children] == [False, True]


async def test_budget_errors_stop_the_cascade() -> None:
    small = ScriptedModel("small", replies=[BudgetExceeded("no budget left")])
    big = ScriptedModel("big", default="Paris")
    with pytest.raises(BudgetExceeded):
        await Cascade("c", [Stage(small, LogprobCheck()), Stage(big)]).complete(Q)
    assert big.calls == []


async def test_last_stage_failing_returns_the_latest_answer() -> None:
    small = ScriptedModel("small", default="Lyon", logprob=-3.0)
    big = ScriptedModel("big", fail_with="rate_limit", fail_times=-1)
    out = await Cascade("c", [Stage(small, LogprobCheck(-1.0)), Stage(big)]).complete(Q)
    assert out.text == "Lyon"
    assert out.trace is not None
    stages = out.trace.attributes["stages"]
    assert [s["decision"] for s in stages] == ["accepted", "failed"]
    assert "last stage failed" in stages[0]["note"]


async def test_every_stage_failing() -> None:
    small = ScriptedModel("small", fail_with="server_error", fail_times=-1)
    big = ScriptedModel("big", fail_with="timeout", fail_times=-1)
    with pytest.raises(AllModelsFailed) as info:
        await Cascade("c", [Stage(small, LogprobCheck()), Stage(big)]).complete(Q)
    assert set(info.value.errors) == {"small", "big"}


async def test_three_stages_stop_in_the_middle_and_a_composite_stage_works() -> None:
    s1 = ScriptedModel("s1", default="Lyon", logprob=-3.0)
    s2 = FanOut("s2", [ScriptedModel("x", default="Paris"), ScriptedModel("y", default="P")],
                combine="longest")
    s3 = ScriptedModel("s3", default="Paris")
    cascade = Cascade("c", [Stage(s1, LogprobCheck(-1.0)), Stage(s2, FunctionCheck(is_paris)),
                            Stage(s3)])
    out = await cascade.complete(Q)
    assert out.text == "Paris"
    assert s3.calls == []
    assert out.trace is not None
    assert out.trace.attributes["accepted_stage"] == 1
    assert [s["decision"] for s in out.trace.attributes["stages"]] == ["escalated", "accepted"]
    assert set(cascade.children()) == {s1, s2, s3}


# -- YAML --------------------------------------------------------------------------------

YAML = """
models:
  small: {provider: scripted, replies: [Paris, Lyon, Rome]}
  mid: {provider: scripted, default: Paris, logprob: -0.1}
  judge: {provider: scripted, default: '{"score": 3}'}
  big: {provider: scripted, default: Paris}
systems:
  c:
    kind: cascade
    stages:
      - model: small
        check: {type: agreement, samples: 3, threshold: 0.6, temperature: 0.7}
      - model: mid
        check: {type: judge, judge: judge, threshold: 7}
      - model: mid
        check: {type: logprob, threshold: -0.5}
      - model: big
"""


async def test_yaml_cascade_runs_every_check_type() -> None:
    c = Config.from_text(YAML).get("c")
    assert isinstance(c, Cascade)
    out = await c.complete(Q)
    assert out.trace is not None
    stages = out.trace.attributes["stages"]
    assert [s["check"] for s in stages] == ["agreement", "judge", "logprob"]
    assert [s["decision"] for s in stages] == ["escalated", "escalated", "accepted"]
    assert json.dumps(out.trace.to_dict())  # the trace serialises


def test_yaml_function_check() -> None:
    text = YAML.replace("{type: logprob, threshold: -0.5}",
                        "{type: function, function: 'tests.patterns.test_cascade:is_paris'}")
    c = Config.from_text(text).get("c")
    assert isinstance(c, Cascade)
    assert isinstance(c.stages[2].check, FunctionCheck)


def test_yaml_stage_without_check_points_at_the_stage() -> None:
    text = YAML.replace("        check: {type: logprob, threshold: -0.5}\n", "")
    with pytest.raises(ConfigError, match=r"c\.stages\.2: every stage but the last"):
        Config.from_text(text).get("c")


def test_yaml_unknown_check_type() -> None:
    text = YAML.replace("type: logprob", "type: vibes")
    with pytest.raises(ConfigError, match="stages"):
        Config.from_text(text).get("c")
