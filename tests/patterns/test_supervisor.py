"""Supervisor on scripted models: assignments, review rounds, fallbacks."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from chorus.config.builder import Config
from chorus.core import context
from chorus.core.errors import AllModelsFailed, DeadlineExceeded, ServerError
from chorus.core.types import Completion, Request
from chorus.patterns.supervisor import (
    Assignment,
    Supervisor,
    combine_outputs,
    parse_assignments,
    parse_review,
)
from chorus.providers import ScriptedModel

QUESTION = "Write a haiku about rain."
WORKERS = ["writer", "checker"]


def assign(*pairs: tuple[str, str]) -> str:
    return json.dumps({"assignments": [{"worker": w, "task": t} for w, t in pairs]})


def review(approved: bool, feedback: str = "") -> str:
    return json.dumps({"approved": approved, "feedback": feedback})


def attrs(done: Completion) -> dict[str, object]:
    assert done.trace is not None
    return done.trace.attributes


# -- plain functions ---------------------------------------------------------------------


def test_parse_assignments_keeps_usable_ones_and_says_what_was_dropped() -> None:
    value = {"assignments": [{"worker": "writer", "task": " Write it. "},
                             {"worker": "poet", "task": "Rhyme."},
                             {"worker": "checker", "task": ""},
                             {"worker": "writer", "task": "Write it."}]}
    got, notes = parse_assignments(value, WORKERS, 4)
    assert got == [Assignment("writer", "Write it.")]
    assert notes == ["assignment 2 dropped: unknown worker 'poet'",
                     "assignment 3 dropped: no task",
                     "assignment 4 dropped: repeats an earlier one"]


@pytest.mark.parametrize(("value", "message"), [
    ({"assignments": []}, "no 'assignments' list"),
    ({"tasks": [1]}, "no 'assignments' list"),
    ({"assignments": [{"worker": "poet", "task": "x"}]}, "no usable assignment"),
    ({"assignments": [{"worker": "writer", "task": str(i)} for i in range(3)]},
     "3 assignments, more than max_assignments=2"),
])
def test_parse_assignments_rejects_unusable_answers(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_assignments(value, WORKERS, 2)


def test_parse_review() -> None:
    assert parse_review({"approved": True, "feedback": " fine "}) == (True, "fine")
    assert parse_review({"approved": "no", "feedback": "too long"}) == (False, "too long")
    assert parse_review({"approved": False}) == (False, "")
    with pytest.raises(ValueError, match="no true/false 'approved'"):
        parse_review({"approved": "maybe"})
    with pytest.raises(ValueError, match="not a JSON object"):
        parse_review(["approved"])


def test_combine_outputs() -> None:
    assert combine_outputs([("writer", "a poem")]) == "a poem"
    assert combine_outputs([("writer", "a poem"), ("checker", "ok")]) == \
        "[writer]\na poem\n\n[checker]\nok"


# -- the pattern -------------------------------------------------------------------------


async def test_approved_on_the_first_round() -> None:
    boss = ScriptedModel("boss", replies=[
        assign(("writer", "Write the haiku."), ("checker", "List rain words.")),
        review(True, "good")])
    writer = ScriptedModel("w", default="drops on the window")
    checker = ScriptedModel("c", default="drizzle, storm")
    sup = Supervisor("team", supervisor=boss, synthesize=False,
                     workers={"writer": writer, "checker": checker})
    done = await sup.complete(Request.of(QUESTION))
    assert done.text == "[writer]\ndrops on the window\n\n[checker]\ndrizzle, storm"
    a = attrs(done)
    assert a["assignments"] == [{"worker": "writer", "task": "Write the haiku."},
                                {"worker": "checker", "task": "List rain words."}]
    assert a["fallback_reason"] is None
    assert a["rounds"] == [{"round": 1, "failed_workers": [], "approved": True,
                            "feedback": "good"}]
    assert a["rounds_used"] == 1 and a["approved"] is True
    assert writer.calls[0].prompt.startswith("Write the haiku.")
    assert QUESTION in writer.calls[0].prompt
    # The review saw the combined result.
    assert "drops on the window" in boss.calls[1].prompt
    assert boss.calls[1].params.response_format["required"] == ["feedback", "approved"]  # type: ignore[index]
    assert done.trace is not None
    assert [c.name for c in done.trace.children] == ["assign", "round 1"]
    assert [c.name for c in done.trace.children[1].children] == ["writer", "checker", "review"]
    assert done.usage.total_tokens == sum(
        s.usage.total_tokens for s in done.trace.walk() if s.kind == "model")


async def test_assignment_schema_is_bounded() -> None:
    boss = ScriptedModel("boss", replies=[assign(("writer", "x")), review(True)])
    sup = Supervisor("team", supervisor=boss, synthesize=False, max_task_chars=100,
                     workers={"writer": ScriptedModel("w", default="y"),
                              "checker": ScriptedModel("c", default="z")})
    await sup.complete(Request.of(QUESTION))
    schema = boss.calls[0].params.response_format
    items = schema["properties"]["assignments"]  # type: ignore[index]
    assert items["maxItems"] == 2
    assert items["items"]["properties"]["worker"]["enum"] == WORKERS
    assert items["items"]["properties"]["task"]["maxLength"] == 100


async def test_rejected_then_approved_feeds_back_to_the_workers() -> None:
    boss = ScriptedModel("boss", replies=[assign(("writer", "Write the haiku.")),
                                          review(False, "Mention thunder."), review(True)])
    writer = ScriptedModel("w", replies=["soft rain falls", "thunder, then soft rain"])
    sup = Supervisor("team", supervisor=boss, synthesize=False, workers={"writer": writer},
                     max_rounds=3)
    done = await sup.complete(Request.of(QUESTION))
    assert done.text == "thunder, then soft rain"
    assert done.model == "w"
    revision = writer.calls[1].prompt
    assert "Your previous answer:\nsoft rain falls" in revision
    assert "Mention thunder." in revision
    a = attrs(done)
    assert [(r["approved"], r["feedback"]) for r in a["rounds"]] == [  # type: ignore[attr-defined]
        (False, "Mention thunder."), (True, "")]
    assert a["rounds_used"] == 2 and a["approved"] is True


async def test_rejected_until_max_rounds_returns_the_last_result() -> None:
    boss = ScriptedModel("boss", replies=[assign(("writer", "Write.")),
                                          review(False, "worse"), review(False, "still bad"),
                                          review(False, "unused")])
    writer = ScriptedModel("w", replies=["v1", "v2", "v3"])
    done = await Supervisor("team", supervisor=boss, synthesize=False, workers={"writer": writer},
                            max_rounds=2).complete(Request.of(QUESTION))
    assert done.text == "v2"
    assert len(writer.calls) == 2 and len(boss.calls) == 3
    a = attrs(done)
    assert a["rounds_used"] == 2 and a["approved"] is False
    assert a["rounds"][-1]["feedback"] == "still bad"  # type: ignore[index]


async def test_bad_assignment_json_falls_back_to_the_first_worker() -> None:
    boss = ScriptedModel("boss", replies=["writer should write", "writer, please", review(True)])
    writer = ScriptedModel("w", default="a haiku")
    checker = ScriptedModel("c", default="unused")
    request = Request.of(QUESTION, system="Be terse.")
    done = await Supervisor("team", supervisor=boss, synthesize=False,
                            workers={"writer": writer, "checker": checker}).complete(request)
    assert done.text == "a haiku"
    a = attrs(done)
    assert str(a["fallback_reason"]).startswith("unparseable assignments: ")
    assert a["assignments"] == [{"worker": "writer", "task": QUESTION}]
    assert writer.calls == [request] and checker.calls == []
    assert done.trace is not None and done.trace.children[0].attributes["calls"] == 2


async def test_assignments_to_unknown_workers_fall_back() -> None:
    boss = ScriptedModel("boss", replies=[assign(("poet", "Write.")), review(True)])
    writer = ScriptedModel("w", default="a haiku")
    done = await Supervisor("team", supervisor=boss, synthesize=False,
                            workers={"writer": writer}).complete(Request.of(QUESTION))
    assert attrs(done)["fallback_reason"] == (
        "unusable assignments: no usable assignment "
        "(assignment 1 dropped: unknown worker 'poet')")
    assert done.text == "a haiku"


async def test_failed_supervisor_falls_back_and_unreadable_review_stops() -> None:
    boss = ScriptedModel("boss", replies=[ServerError("down", model="boss"), "hmm", "hmm"])
    writer = ScriptedModel("w", default="a haiku")
    done = await Supervisor("team", supervisor=boss, synthesize=False, workers={"writer": writer},
                            max_rounds=3).complete(Request.of(QUESTION))
    a = attrs(done)
    assert str(a["fallback_reason"]).startswith("supervisor failed: ")
    assert a["rounds_used"] == 1 and a["approved"] is None
    assert str(a["rounds"][0]["feedback"]).startswith("unreadable review: ")  # type: ignore[index]
    assert done.text == "a haiku" and len(writer.calls) == 1


async def test_workers_run_concurrently() -> None:
    boss = ScriptedModel("boss", replies=[assign(("writer", "A."), ("checker", "B.")),
                                          review(True)])
    sup = Supervisor("team", supervisor=boss, synthesize=False, workers={
        "writer": ScriptedModel("w", default="a", latency_s=0.2),
        "checker": ScriptedModel("c", default="b", latency_s=0.2)})
    t0 = time.perf_counter()
    await sup.complete(Request.of(QUESTION))
    assert 0.2 <= time.perf_counter() - t0 < 0.35


async def test_a_failing_worker_is_recorded_and_the_rest_is_used() -> None:
    boss = ScriptedModel("boss", replies=[assign(("writer", "A."), ("checker", "B.")),
                                          review(True)])
    done = await Supervisor("team", supervisor=boss, synthesize=False, workers={
        "writer": ScriptedModel("w", default="a"),
        "checker": ScriptedModel("c", fail_with="server_error", fail_times=-1)}).complete(
        Request.of(QUESTION))
    assert done.text == "[writer]\na"
    assert attrs(done)["rounds"][0]["failed_workers"] == ["checker"]  # type: ignore[index]


async def test_every_worker_failing_raises() -> None:
    boss = ScriptedModel("boss", replies=[assign(("writer", "A."))])
    with pytest.raises(AllModelsFailed, match="writer: "):
        await Supervisor("team", supervisor=boss, synthesize=False, workers={
            "writer": ScriptedModel("w", fail_with="timeout", fail_times=-1)}).complete(
            Request.of(QUESTION))


async def test_synthesize_has_the_supervisor_write_the_answer() -> None:
    boss = ScriptedModel("boss", replies=[assign(("writer", "A."), ("checker", "B.")),
                                          review(True), "final haiku"])
    done = await Supervisor("team", supervisor=boss, synthesize=True, workers={
        "writer": ScriptedModel("w", default="a"),
        "checker": ScriptedModel("c", default="b")}).complete(Request.of(QUESTION))
    assert done.text == "final haiku" and done.model == "boss"
    assert "[writer]\na" in boss.calls[2].prompt


async def test_deadline_during_a_round_raises() -> None:
    boss = ScriptedModel("boss", replies=[assign(("writer", "A."))])
    sup = Supervisor("team", supervisor=boss, synthesize=False,
                     workers={"writer": ScriptedModel("w", default="a", latency_s=1.0)})
    t0 = time.perf_counter()
    with context.scope(deadline_s=0.2), pytest.raises(DeadlineExceeded):
        await sup.complete(Request.of(QUESTION))
    assert time.perf_counter() - t0 < 0.6


async def test_cancelling_stops_the_workers() -> None:
    boss = ScriptedModel("boss", replies=[assign(("writer", "A."))])
    writer = ScriptedModel("w", default="a", latency_s=5.0)
    task = asyncio.create_task(Supervisor("team", supervisor=boss, synthesize=False,
                                          workers={"writer": writer}).complete(
        Request.of(QUESTION)))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(writer.calls) == 1


def test_yaml_builds_a_supervisor() -> None:
    cfg = Config.from_text("""
models:
  boss: {provider: scripted, default: '{}'}
  w: {provider: scripted, default: ok}
systems:
  team:
    kind: supervisor
    supervisor: boss
    workers: {writer: w, checker: {provider: scripted, default: fine}}
    max_rounds: 3
""")
    sup = cfg.get("team")
    assert isinstance(sup, Supervisor)
    assert sup.max_rounds == 3 and sup.max_assignments == 2
    assert list(sup.workers) == WORKERS


def test_a_workers_second_task_gets_its_own_label() -> None:
    from chorus.patterns.supervisor import combine_outputs

    text = combine_outputs([("writer", "a"), ("checker", "b"), ("writer", "c")])
    assert text == "[writer]\na\n\n[checker]\nb\n\n[writer 2]\nc"


def test_review_schema_asks_for_a_reason_before_the_verdict() -> None:
    import jsonschema

    from chorus.patterns.supervisor import review_schema

    schema = review_schema(120)
    assert list(schema["properties"]) == ["feedback", "approved"]
    valid = jsonschema.Draft202012Validator(schema).is_valid
    assert valid({"feedback": "It names Paris, correct.", "approved": True})
    assert not valid({"feedback": "...", "approved": True})
