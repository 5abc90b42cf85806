"""Integer bounds in the local models' JSON-schema grammar: llama-cpp-python's converter
ignores minimum/maximum, so a forced call wrote {"hour": 1430} for an hour of 0-23."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

from chorus.core.errors import MalformedResponse
from chorus.core.types import ForcedTool, Params, Request, Tool
from chorus.providers._int_range import MAX_DIGITS, int_bounds, range_regex
from chorus.providers._llama import Generated, schema_gbnf
from chorus.providers.local import LocalModel

RANGES = [(0, 23), (0, 59), (1, 12), (5, 5), (0, 0), (7, 1000), (99, 101), (-40, 125),
          (-999, -100), (-7, -3), (-1, 1), (123, 4567), (0, None), (10, None), (-15, None),
          (None, 0), (None, 42), (None, -8)]


@pytest.mark.parametrize(("lo", "hi"), RANGES)
def test_the_grammar_allows_exactly_the_integers_in_range(lo: int | None,
                                                          hi: int | None) -> None:
    allowed = re.compile(range_regex(lo, hi))
    for n in range(-12_000, 12_000):
        inside = (lo is None or n >= lo) and (hi is None or n <= hi)
        assert bool(allowed.fullmatch(str(n))) == inside, n
    for odd in ("007", "-0", "+5", "1.0", "", "-", "1e3"):
        assert not allowed.fullmatch(odd), odd
    # the open ends reach as far as llama.cpp's own integer rule
    if hi is None:
        assert allowed.fullmatch("9" * MAX_DIGITS)
    if lo is None:
        assert allowed.fullmatch("-" + "9" * MAX_DIGITS)


def test_bounds_from_the_schema() -> None:
    assert int_bounds({"minimum": 0, "maximum": 23}) == (0, 23)
    assert int_bounds({"exclusiveMinimum": 0, "exclusiveMaximum": 10}) == (1, 9)
    assert int_bounds({"minimum": 0.5, "maximum": 9.5}) == (1, 9)
    assert int_bounds({"minimum": 0, "exclusiveMinimum": True}) == (1, None)  # draft 4
    assert int_bounds({"minimum": 3, "exclusiveMinimum": 5}) == (6, None)
    assert int_bounds({"type": "integer"}) == (None, None)
    with pytest.raises(ValueError, match="no integer"):
        range_regex(5, 4)


def test_the_local_grammar_carries_the_bounds() -> None:
    pytest.importorskip("llama_cpp")
    schema = {"type": "object", "properties": {
        "hour": {"type": "integer", "minimum": 0, "maximum": 23},
        "count": {"type": "integer"}}, "required": ["hour", "count"]}
    gbnf = schema_gbnf(schema)
    assert 'hour ::= ([0-9] | "1" [0-9] | "2" [0-3]) space' in gbnf
    assert "count-kv ::= \"\\\"count\\\"\" space \":\" space integer" in gbnf
    from chorus.providers._llama import _grammar

    assert _grammar(json.dumps(schema)) is not None  # llama.cpp parses it


ALARM = Tool("set_alarm", "Set an alarm", {
    "type": "object", "properties": {
        "hour": {"type": "integer", "minimum": 0, "maximum": 23},
        "minute": {"type": "integer", "minimum": 0, "maximum": 59},
        "label": {"type": "string"}}, "required": ["hour", "minute"]})


@pytest.mark.local
@pytest.mark.parametrize("label", ["the meeting", "yoga"])
async def test_gemma_forced_call_keeps_the_hour_in_range(label: str) -> None:
    # benchmarks/bench_tool_calls.py: Gemma 3 wrote {"hour": 1430, "minute": 1430} here.
    model = LocalModel("gemma", "gemma3-270m",
                       params=Params(temperature=0, max_tokens=128, seed=0))
    ok, why = model.usable()
    if not ok:
        pytest.skip(why)
    out = await model.complete(Request.of(f"Set an alarm for 14:30 called {label}.",
                                          tools=(ALARM,), tool_choice=ForcedTool("set_alarm")))
    (call,) = out.tool_calls
    args = json.loads(call.arguments)
    jsonschema.validate(args, ALARM.parameters)


@pytest.mark.parametrize("tool_choice", [ForcedTool("set_alarm"), "required"])
def test_a_call_whose_decoding_stopped_inside_its_json_is_an_error(
        tool_choice: ForcedTool | str) -> None:
    # Gemma 3 stopped inside a 200-character string (the grammar's cap) with an end of
    # turn; the broken arguments came back as a finished call (finish_reason tool_calls).
    model = LocalModel("gemma", "gemma3-270m")
    request = Request.of("Set an alarm for 14:30.", tools=(ALARM,),
                         tool_choice=tool_choice)  # type: ignore[arg-type]
    cut = Generated('{"hour": 14, "minute": 30, "label": "Review of the review of', 40, 30,
                    "stop")
    with pytest.raises(MalformedResponse, match="ended inside its arguments"):
        model._completion(request, cut, 0.0)
    whole = Generated('{"hour": 14, "minute": 30}', 40, 12, "stop")
    done = model._completion(request, whole, 0.0)
    assert done.finish_reason == "tool_calls" and json.loads(done.tool_calls[0].arguments)
    # Cut by max_tokens: a length finish says so already, and stays as it is.
    assert model._completion(request, Generated(cut.text, 40, 128, "length"), 0.0
                             ).finish_reason == "length"
