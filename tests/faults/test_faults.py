"""The fault suite: each upstream fault against the baseline (fallback over retry(3) of the
primary, one fallback model), through ``chorus serve`` with the official ``openai`` SDK,
against a real server on 127.0.0.1 that fails on purpose (fault_server.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import openai
import pytest

from chorus.config.builder import Config
from chorus.core.model import stream_or_complete
from chorus.core.types import Completion, Request
from chorus.gateway import Gateway, create_app
from tests.faults.fault_server import ANSWER, FaultServer
from tests.faults.scenarios import FLAKY, SCENARIOS, Scenario, ask, client, config
from tests.gateway.conftest import serving


@pytest.fixture(scope="module")
def faults() -> Iterator[FaultServer]:
    with FaultServer() as fs:
        yield fs


@pytest.fixture(scope="module")
def sdk(faults: FaultServer) -> Iterator[openai.OpenAI]:
    gw = Gateway.from_config(Config.from_text(config(faults.base_url), "faults.yaml"))
    with serving(create_app(gw)) as url:
        yield client(url)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_each_fault_ends_in_a_full_answer_or_a_clean_error(
        sdk: openai.OpenAI, scenario: Scenario) -> None:
    got = ask(sdk, scenario)
    assert got.holds(scenario), got


def test_a_rescued_stream_names_each_parts_model_and_repeats_nothing(
        sdk: openai.OpenAI) -> None:
    got = ask(sdk, next(s for s in SCENARIOS if s.system == "s-cut"))
    assert got.models[0] == "p-cut" and got.models[-1] == "fb"
    assert got.text == ANSWER  # "Paris is the " + "capital of France.", nothing twice


def test_a_cut_stream_from_a_plain_leaf_is_an_error_event_not_stop(
        sdk: openai.OpenAI) -> None:
    # An upstream that closes without [DONE] or a finish_reason: the SDK must not see a
    # finished answer (it used to get finish_reason "stop" and [DONE] after the cut).
    got = ask(sdk, Scenario("cut leaf", "p-cut", True, "error event", error="error event"))
    assert got.error == "error event" and got.finish is None, got
    assert got.text == "Paris is the " and "closed before the answer ended" in got.detail


def test_503_then_fallback_bills_only_the_answering_model(
        sdk: openai.OpenAI, faults: FaultServer) -> None:
    before = faults.count("503")
    r = sdk.chat.completions.with_raw_response.create(
        model="s-503", messages=[{"role": "user", "content": "What is the capital of France?"}])
    body = r.parse()
    assert faults.count("503") - before == 3  # the retry's three attempts, then fb
    assert body.model == "fb" and r.headers["x-chorus-system"] == "s-503"
    assert body.usage is not None
    fb_cost = (body.usage.prompt_tokens * 1 + body.usage.completion_tokens * 2) / 1e6
    assert float(r.headers["x-chorus-cost-usd"]) == pytest.approx(fb_cost)


def test_a_content_filter_400_never_reaches_the_fallback(
        sdk: openai.OpenAI, faults: FaultServer) -> None:
    before = faults.count("ok")
    got = ask(sdk, next(s for s in SCENARIOS if s.system == "s-filter"))
    assert got.error == "http 400" and "content" in got.detail
    assert faults.count("filter") >= 1 and faults.count("ok") == before


def test_a_primary_down_for_a_while_is_used_again_once_healthy(
        sdk: openai.OpenAI, faults: FaultServer) -> None:
    # 20 requests while the primary is down for 1.5 s (a minute, shortened): every one
    # is answered; the cooldown spares the primary most calls while it is down; once it
    # is back the answers come from it again.
    faults.down_until = time.monotonic() + 1.5
    flaky = FLAKY
    answered: list[str | None] = []
    for _ in range(20):
        got = ask(sdk, flaky)
        assert got.text == ANSWER and got.finish == "stop", got
        answered.append(got.model)
        time.sleep(0.12)
    assert answered[0] == "fb" and answered[-5:] == ["p-flaky"] * 5
    down_calls = faults.count("flaky") - answered.count("p-flaky")
    assert down_calls < 3 * answered.count("fb")  # not 3 retries per request while down


async def test_a_rescue_records_the_seam_and_bills_both_parts(faults: FaultServer) -> None:
    system = Config.from_text(config(faults.base_url)).get("s-prefill")
    events = [e async for e in stream_or_complete(system, Request.of("Capital of France?"))]
    final = events[-1]
    assert isinstance(final, Completion) and final.text == ANSWER
    assert final.model == "fb-np" and final.trace is not None
    rescue = final.trace.attributes["rescues"][0]
    # fb-np takes prefills but refused this one: the rescue asked it to continue.
    assert rescue == {"from": "p-cut", "to": "fb-np", "form": "instruction",
                      "after_chars": len("Paris is the "), "dropped_chars": 0}
    assert any(a.get("type") == "prefill_refused" for a in final.trace.attributes["attempts"])
    parts = [s for s in final.trace.walk() if s.kind == "model" and s.usage.output_tokens]
    assert {s.name for s in parts} == {"p-cut", "fb-np"}
    assert final.usage == parts[0].usage + parts[1].usage
    assert final.cost_usd == pytest.approx(sum(s.cost_usd for s in parts)) and final.cost_usd


def test_a_fallback_shares_out_the_callers_own_deadline(faults: FaultServer,
                                                        sdk: openai.OpenAI) -> None:
    # The SDK's 3 s timeout reaches the gateway (x-stainless-read-timeout): the silent
    # primary gets half of it, not its own 30 s, and the fallback answers in time.
    quick = sdk.with_options(timeout=3.0)
    t0 = time.perf_counter()
    r = quick.chat.completions.create(
        model="s-deadline", messages=[{"role": "user", "content": "Capital of France?"}])
    assert r.model == "fb" and r.choices[0].message.content == ANSWER
    assert time.perf_counter() - t0 < 3.0
    # Said outright, for any client and for streams too.
    got = quick.chat.completions.create(
        model="s-deadline", messages=[{"role": "user", "content": "Capital of France?"}],
        stream=True, extra_headers={"x-chorus-deadline-s": "2"})
    chunks = list(got)
    assert chunks[-1].model == "fb"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER
    with pytest.raises(openai.BadRequestError, match="x-chorus-deadline-s"):
        quick.chat.completions.create(
            model="s-deadline", messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-chorus-deadline-s": "soon"})


def test_the_responses_api_names_the_answering_model_too(sdk: openai.OpenAI) -> None:
    r = sdk.responses.create(model="s-503", input="What is the capital of France?")
    assert r.model == "fb" and r.output_text == ANSWER
    with sdk.responses.stream(model="s-503", input="What is the capital of France?") as s:
        final = s.get_final_response()
    assert final.model == "fb" and final.output_text == ANSWER
