"""FanOut: modes, timeouts, failures, cancellation, wall time and combining."""

from __future__ import annotations

import asyncio
import time

import pytest

from chorus.config import Config
from chorus.core.context import scope
from chorus.core.errors import AllModelsFailed, ConfigError, PatternError
from chorus.core.types import Completion, Request
from chorus.patterns._concurrent import settled
from chorus.patterns.fanout import FanOut, concat, needed, select
from chorus.providers.scripted import ScriptedModel

Q = Request.of("What is the capital of France?")


def comp(text: str, model: str = "m") -> Completion:
    return Completion(text, model)


class Watched(ScriptedModel):
    """A scripted model that notes when its call was cancelled."""

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.was_cancelled = False

    async def complete(self, request: Request) -> Completion:
        try:
            return await super().complete(request)
        except asyncio.CancelledError:
            self.was_cancelled = True
            raise


def pick_second(completions: list[Completion]) -> Completion:
    return completions[1]


# -- decisions, no event loop ------------------------------------------------------------


def test_needed_per_mode() -> None:
    assert needed("all", 3) is None
    assert needed("first", 3) == 1
    assert needed("quorum", 3, 2) == 2
    with pytest.raises(ValueError, match="between 1 and 3"):
        needed("quorum", 3, 4)
    with pytest.raises(ValueError):
        needed("quorum", 3, None)


@pytest.mark.parametrize(
    ("ok", "failed", "total", "need", "expected"),
    [
        (0, 0, 3, None, False),
        (2, 0, 3, None, False),
        (2, 1, 3, None, True),  # all: done when nothing runs
        (1, 0, 3, 1, True),  # first success
        (0, 2, 3, 1, False),  # one still running may succeed
        (0, 3, 3, 1, True),  # nobody left
        (1, 1, 4, 2, False),
        (2, 1, 4, 2, True),
        (0, 2, 3, 2, True),  # 1 running cannot make a quorum of 2
    ],
)
def test_settled(ok: int, failed: int, total: int, need: int | None, expected: bool) -> None:
    assert settled(ok, failed, total, need) is expected


def test_concat_labels_each_answer() -> None:
    assert concat([("a", " Paris \n"), ("b", "Lyon")]) == "[a]\nParis\n\n[b]\nLyon"


def test_select() -> None:
    cs = [comp("Paris", "a"), comp("It is Paris.", "b"), comp("Lyon", "c"), comp("P", "d")]
    assert select(cs, "first") is cs[0]
    assert select(cs, "longest") is cs[1]
    assert select(cs, "shortest") is cs[3]
    assert select(cs, lambda xs: xs[2]) is cs[2]
    assert select(cs, lambda xs: "new text") == "new text"
    with pytest.raises(ValueError, match="combine must be"):
        select(cs, "median")
    with pytest.raises(ValueError):
        select([], "first")


def test_longest_tie_keeps_child_order() -> None:
    cs = [comp("abc", "a"), comp("xyz", "b")]
    assert select(cs, "longest") is cs[0]
    assert select(cs, "shortest") is cs[0]


# -- modes -------------------------------------------------------------------------------


async def test_all_mode_concat_sums_usage_and_traces() -> None:
    a = ScriptedModel("a", default="Paris")
    b = ScriptedModel("b", default="Paris, France")
    fan = FanOut("fan", [a, b])
    out = await fan.complete(Q)
    assert out.text == "[a]\nParis\n\n[b]\nParis, France"
    assert out.model == "fan"
    assert out.usage.output_tokens == 1 + 2
    assert out.usage.input_tokens == 2 * 6
    assert out.trace is not None
    assert out.trace.kind == "fanout"
    assert [c.name for c in out.trace.children] == ["a", "b"]
    assert out.trace.attributes["mode"] == "all"
    assert out.trace.attributes["answered"] == ["a", "b"]
    assert out.trace.attributes["cancelled"] == []


async def test_run_all_returns_every_outcome() -> None:
    a = ScriptedModel("a", default="one")
    b = ScriptedModel("b", fail_with="rate_limit", fail_times=-1)
    result = await FanOut("fan", [a, b]).run_all(Q)
    assert [c.text for c in result.completions] == ["one"]
    assert list(result.errors) == ["b"]
    assert "rate_limit" in str(result.errors["b"])
    assert result.answered == ["a"]
    assert [o.model.name for o in result.outcomes] == ["a", "b"]


async def test_first_mode_returns_fast_answer_and_cancels_the_slow_one() -> None:
    fast = ScriptedModel("fast", default="quick", latency_s=0.05)
    slow = Watched("slow", default="late", latency_s=2.0)
    fan = FanOut("fan", [slow, fast], mode="first")
    t0 = time.perf_counter()
    out = await fan.complete(Q)
    elapsed = time.perf_counter() - t0
    assert out.text == "quick"
    assert out.model == "fast"
    assert elapsed < 0.5
    assert slow.was_cancelled
    # Nothing of the fan-out keeps running behind the caller.
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert out.trace is not None
    attrs = out.trace.attributes
    assert attrs["cancelled"] == ["slow"]
    assert attrs["chosen"] == "fast"
    spans = {s.name: s for s in out.trace.children}
    assert spans["slow"].error == "cancelled"


async def test_first_mode_skips_a_fast_failure() -> None:
    broken = ScriptedModel("broken", fail_with="server_error", fail_times=-1)
    ok = ScriptedModel("ok", default="fine", latency_s=0.05)
    out = await FanOut("fan", [broken, ok], mode="first").complete(Q)
    assert out.text == "fine"
    assert out.trace is not None
    assert "broken" in out.trace.attributes["failed"]


async def test_quorum_returns_once_enough_answered_and_cancels_the_rest() -> None:
    kids = [
        ScriptedModel("a", default="A", latency_s=0.05),
        ScriptedModel("b", default="B", latency_s=0.1),
        ScriptedModel("c", fail_with="timeout", fail_times=-1, latency_s=0.02),
        Watched("d", default="D", latency_s=2.0),
    ]
    fan = FanOut("fan", kids, mode="quorum", quorum=2)
    t0 = time.perf_counter()
    out = await fan.complete(Q)
    assert time.perf_counter() - t0 < 0.6
    assert out.text == "[a]\nA\n\n[b]\nB"
    assert kids[3].was_cancelled  # type: ignore[attr-defined]
    assert out.trace is not None
    assert out.trace.attributes["quorum"] == 2
    assert out.trace.attributes["cancelled"] == ["d"]
    assert list(out.trace.attributes["failed"]) == ["c"]


async def test_quorum_that_cannot_be_reached_fails_fast() -> None:
    kids = [
        ScriptedModel("a", default="A"),
        ScriptedModel("b", fail_with="server_error", fail_times=-1),
        ScriptedModel("c", fail_with="server_error", fail_times=-1),
    ]
    with pytest.raises(PatternError, match="quorum of 3 not reached"):
        await FanOut("fan", kids, mode="quorum", quorum=3).complete(Q)


# -- timeouts and failures ---------------------------------------------------------------


async def test_per_child_timeout_keeps_the_others() -> None:
    a = ScriptedModel("a", default="A", latency_s=0.01)
    slow = ScriptedModel("slow", default="S", latency_s=1.0)
    fan = FanOut("fan", [a, slow], timeout_s={"slow": 0.05})
    t0 = time.perf_counter()
    out = await fan.complete(Q)
    assert time.perf_counter() - t0 < 0.5
    assert out.text == "[a]\nA"
    assert out.trace is not None
    assert "0.05s timeout" in out.trace.attributes["failed"]["slow"]
    spans = {s.name: s for s in out.trace.children}
    assert spans["slow"].error is not None


async def test_one_timeout_for_every_child() -> None:
    kids = [ScriptedModel(n, default=n, latency_s=s) for n, s in [("a", 0.01), ("b", 1.0)]]
    result = await FanOut("fan", kids, timeout_s=0.05).run_all(Q)
    assert result.answered == ["a"]
    assert list(result.errors) == ["b"]


def test_timeout_for_unknown_child_is_rejected() -> None:
    with pytest.raises(ValueError, match="nope"):
        FanOut("fan", [ScriptedModel("a", default="A")], timeout_s={"nope": 1})


async def test_partial_failure_keeps_successes_and_records_errors() -> None:
    kids = [
        ScriptedModel("a", default="A"),
        ScriptedModel("b", fail_with="connection", fail_times=-1),
        ScriptedModel("c", default="C"),
    ]
    out = await FanOut("fan", kids).complete(Q)
    assert out.text == "[a]\nA\n\n[c]\nC"
    assert out.trace is not None
    assert list(out.trace.attributes["failed"]) == ["b"]
    errors = [s for s in out.trace.children if s.error]
    assert [s.name for s in errors] == ["b"]


async def test_all_failing_raises_all_models_failed() -> None:
    kids = [
        ScriptedModel("a", fail_with="server_error", fail_times=-1),
        ScriptedModel("b", fail_with="rate_limit", fail_times=-1),
    ]
    with pytest.raises(AllModelsFailed) as info:
        await FanOut("fan", kids).complete(Q)
    assert set(info.value.errors) == {"a", "b"}


async def test_deadline_reaches_the_children() -> None:
    kids = [ScriptedModel(n, default=n, latency_s=1.0) for n in "ab"]
    t0 = time.perf_counter()
    with scope(deadline_s=0.05), pytest.raises(AllModelsFailed, match="deadline"):
        await FanOut("fan", kids).complete(Q)
    assert time.perf_counter() - t0 < 0.5


# -- wall time ---------------------------------------------------------------------------


async def test_wall_time_is_the_slowest_child_not_the_sum() -> None:
    latencies = [0.05 * (i + 1) for i in range(8)]  # 50 .. 400 ms, 1.8 s in sum
    kids = [ScriptedModel(f"m{i}", default="x", latency_s=s) for i, s in enumerate(latencies)]
    t0 = time.perf_counter()
    out = await FanOut("fan", kids).complete(Q)
    elapsed = time.perf_counter() - t0
    assert len(out.trace.children if out.trace else []) == 8
    assert 0.4 <= elapsed <= 1.1 * 0.4 + 0.06  # 1.1x the slowest, plus CI slack


# -- combining ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "text", "model"),
    [
        ("longest", "Paris is the capital", "b"),
        ("shortest", "Paris", "a"),
        ("first", "Paris", "a"),
        ("tests.patterns.test_fanout:pick_second", "Paris is the capital", "b"),
    ],
)
async def test_combine_selectors(how: str, text: str, model: str) -> None:
    kids = [ScriptedModel("a", default="Paris"),
            ScriptedModel("b", default="Paris is the capital"),
            ScriptedModel("c", fail_with="server_error", fail_times=-1)]
    out = await FanOut("fan", kids, combine=how).complete(Q)
    assert out.text == text
    assert out.model == model
    assert out.usage.output_tokens == 1 + 4  # the loser's tokens count too
    assert out.trace is not None
    assert out.trace.attributes["chosen"] == model


async def test_first_selector_is_child_order_not_speed() -> None:
    kids = [ScriptedModel("slow", default="S", latency_s=0.05), ScriptedModel("fast", default="F")]
    out = await FanOut("fan", kids, combine="first").complete(Q)
    assert out.text == "S"


async def test_callable_may_write_a_new_text() -> None:
    kids = [ScriptedModel("a", default="x"), ScriptedModel("b", default="y")]
    out = await FanOut("fan", kids, combine=lambda cs: "+".join(c.text for c in cs)).complete(Q)
    assert out.text == "x+y"
    assert out.model == "fan"


# -- YAML --------------------------------------------------------------------------------

YAML = """
models:
  a: {provider: scripted, default: Paris, latency_s: 0.01}
  b: {provider: scripted, default: "Paris, France", latency_s: 0.3}
  c: {provider: scripted, default: Lyon}
systems:
  fan:
    kind: fanout
    models: [a, b, c]
    mode: quorum
    quorum: 2
    combine: longest
    timeout_s: {a: 5}
"""


async def test_yaml_builds_the_same_fanout() -> None:
    fan = Config.from_text(YAML).get("fan")
    assert isinstance(fan, FanOut)
    assert fan.need == 2
    assert fan.timeouts == [5, None, None]
    out = await fan.complete(Q)
    assert out.text == "Paris"  # a and c answered first; "b" was cancelled
    assert out.trace is not None
    assert out.trace.attributes["cancelled"] == ["b"]


def test_yaml_quorum_without_mode_is_an_error() -> None:
    text = YAML.replace("    mode: quorum\n", "")
    with pytest.raises(ConfigError, match="quorum is only used with mode: quorum"):
        Config.from_text(text).get("fan")


def test_yaml_unknown_combine_is_an_error() -> None:
    text = YAML.replace("combine: longest", "combine: loudest")
    with pytest.raises(ConfigError, match="loudest"):
        Config.from_text(text).get("fan")


# -- end to end on the two bundled local models ------------------------------------------

LOCAL_YAML = """
models:
  smollm2: {provider: local, model: smollm2-135m, params: {temperature: 0, max_tokens: 16}}
  gemma3: {provider: local, model: gemma3-270m, params: {temperature: 0, max_tokens: 16}}
systems:
  both: {kind: fanout, models: [smollm2, gemma3]}
  first: {kind: fanout, models: [smollm2, gemma3], mode: first}
"""


@pytest.mark.local
async def test_fanout_over_the_two_local_models() -> None:
    config = Config.from_text(LOCAL_YAML)
    for name in ("smollm2", "gemma3"):
        ok, why = config.get(name).usable()  # type: ignore[attr-defined]
        if not ok:
            pytest.skip(why)
    out = await config.get("both").complete(Q)
    assert out.trace is not None
    assert out.trace.attributes["answered"] == ["smollm2", "gemma3"]
    assert out.text.startswith("[smollm2]\n") and "\n\n[gemma3]\n" in out.text
    assert "paris" in out.text.lower()
    assert [s.model for s in out.trace.children] == ["smollm2", "gemma3"]
    assert out.usage.output_tokens == sum(s.usage.output_tokens for s in out.trace.children)
    assert 0 < out.usage.output_tokens <= 32

    first = await config.get("first").complete(Q)
    assert first.trace is not None
    winner = first.trace.attributes["chosen"]
    assert first.model == winner and first.text.strip()
    # A cancelled loser must have released its model: it answers again at once.
    for name in first.trace.attributes["cancelled"]:
        again = await asyncio.wait_for(config.get(name).complete(Q), timeout=60)
        assert again.text.strip()
    assert asyncio.all_tasks() == {asyncio.current_task()}
