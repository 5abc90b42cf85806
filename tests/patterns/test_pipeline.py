from __future__ import annotations

import pytest

from chorus.config import Config
from chorus.core.errors import (
    BudgetExceeded,
    ConfigError,
    MalformedResponse,
    RateLimitError,
    StepFailed,
)
from chorus.core.pricing import Price
from chorus.core.types import Request, Span, Usage
from chorus.patterns.pipeline import (
    Pipeline,
    Step,
    check_template,
    first_line,
    json_value,
    regex,
    strip,
)
from chorus.providers.scripted import ScriptedModel


def test_templates_accept_input_and_previous_only() -> None:
    check_template("Summarise {input} given {previous!r} {{literal}}")
    with pytest.raises(ValueError, match=r"unknown placeholder \{question\}"):
        check_template("Answer {question}")
    with pytest.raises(ValueError, match=r"unknown placeholder \{\}"):
        check_template("Answer {}")
    with pytest.raises(ValueError, match=r"unknown placeholder \{input\.upper\}"):
        check_template("{input.upper}")
    with pytest.raises(ValueError, match="bad prompt template"):
        check_template("Answer {input")
    with pytest.raises(ValueError, match="unknown placeholder"):
        Step(ScriptedModel("a", default="x"), "{prev}")


def test_parsers() -> None:
    assert strip("  a b \n") == "a b"
    assert first_line("\n\n  Paris.\nThe capital") == "Paris."
    assert first_line("  ") == ""
    assert json_value()('Sure! {"a": [1, 2]} done') == '{"a": [1, 2]}'
    assert json_value("answer")('```json\n{"answer": "Paris"}\n```') == "Paris"
    with pytest.raises(ValueError, match="no key 'answer'"):
        json_value("answer")('{"other": 1}')
    with pytest.raises(ValueError):
        json_value()("no json here")
    assert regex(r"Answer:\s*(\w+)")("blah Answer: 42 more") == "42"
    assert regex(r"\d+")("x 12 y 34") == "12"
    assert regex(r"(?P<n>\d+)-(\d+)", "n")("5-6") == "5"
    assert regex(r"(\d+)-(\d+)", 2)("5-6") == "6"
    with pytest.raises(ValueError, match="does not match"):
        regex(r"\d+")("none")
    with pytest.raises(ValueError, match="no group 2"):
        regex(r"(\d+)", 2)


async def test_steps_see_the_input_and_the_previous_output() -> None:
    a = ScriptedModel("a", replies=["  draft one  "])
    b = ScriptedModel("b", replies=["final: PARIS\nextra"])
    p = Pipeline("p", [
        Step(a, "Draft an answer to: {input}", name="draft", parser=strip),
        Step(b, "Q: {input}\nDraft: {previous}", name="polish", system="be terse",
             parser=first_line),
    ])
    c = await p.complete(Request.of("capital of France?", system="orig system", max_tokens=9))
    assert c.text == "final: PARIS"
    assert a.calls[0].prompt == "Draft an answer to: capital of France?"
    assert a.calls[0].system == "orig system"
    assert a.calls[0].params.max_tokens == 9
    assert b.calls[0].prompt == "Q: capital of France?\nDraft: draft one"
    assert b.calls[0].system == "be terse"
    assert c.model == "b"


async def test_first_step_previous_is_the_input_and_bare_models_pass_it_on() -> None:
    a = ScriptedModel("a", replies=["one"])
    b = ScriptedModel("b", replies=["two"])
    c = await Pipeline("p", [Step(a, "<{previous}>"), b]).complete(Request.of("in"))
    assert a.calls[0].prompt == "<in>"
    assert b.calls[0].prompt == "one"
    assert c.text == "two"


async def test_usage_cost_and_trace_cover_every_step() -> None:
    price = Price(1_000_000.0, 2_000_000.0)  # $1 per input token, $2 per output token
    a = ScriptedModel("a", replies=["x"], usage=Usage(3, 1), price=price)
    b = ScriptedModel("b", replies=["y"], usage=Usage(5, 2), price=price)
    c = await Pipeline("p", [Step(a, "{input} " + "z" * 300, name="first"), b]).complete(
        Request.of("q"))
    assert c.usage == Usage(8, 3)
    assert c.cost_usd == pytest.approx(3 + 2 + 5 + 4)
    span = c.trace
    assert span is not None and span.kind == "pipeline" and span.name == "p"
    assert [s.name for s in span.children] == ["a", "b"]
    steps = span.attributes["steps"]
    assert [s["name"] for s in steps] == ["first", "b"]
    assert len(steps[0]["prompt"]) == 200 and steps[0]["prompt"].endswith("…")
    assert steps[1]["prompt"] == "x"


async def test_a_failing_step_is_named_and_its_span_kept() -> None:
    a = ScriptedModel("a", replies=["ok"], usage=Usage(2, 1))
    b = ScriptedModel("b", replies=[RateLimitError("slow down", model="b")])
    p = Pipeline("p", [a, Step(b, name="polish"), ScriptedModel("c", default="never")])
    with pytest.raises(StepFailed) as info:
        await p.complete(Request.of("q"))
    err = info.value
    assert str(err) == "p: step '#2 polish' failed: model 'b': slow down"
    assert isinstance(err.cause, RateLimitError)
    span = err.trace
    assert isinstance(span, Span)
    assert span.error == str(err)
    assert span.usage == Usage(2, 1)
    assert [(s.name, s.error) for s in span.children] == [("a", None),
                                                          ("b", "model 'b': slow down")]
    assert span.attributes["failed_step"] == {"step": 2, "name": "polish"}


async def test_a_parser_failure_fails_its_step() -> None:
    a = ScriptedModel("a", replies=["no number"])
    p = Pipeline("p", [Step(a, parser=regex(r"\d+"), name="extract")])
    with pytest.raises(StepFailed, match=r"step '#1 extract' failed: .*does not match") as info:
        await p.complete(Request.of("q"))
    assert isinstance(info.value.cause, MalformedResponse)
    assert [s.name for s in info.value.trace.children] == ["a"]  # type: ignore[union-attr]


async def test_request_level_errors_pass_through() -> None:
    a = ScriptedModel("a", replies=[BudgetExceeded("over budget")])
    with pytest.raises(BudgetExceeded):
        await Pipeline("p", [a]).complete(Request.of("q"))


def test_no_steps_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one step"):
        Pipeline("p", [])


YAML = """
models:
  a: {provider: scripted, replies: ['  {"answer": "Paris"}  ']}
  b: {provider: scripted, rules: {"Paris": "Paris is the capital.\\nMore."}, default: "?"}
systems:
  p:
    kind: pipeline
    steps:
      - {model: a, prompt: "Answer as JSON: {input}", parser: {json: answer}, name: ask}
      - model: b
        prompt: "Write a sentence about {previous} for: {input}"
        system: "one line"
        parser: first_line
      - a
"""


async def test_builds_from_yaml() -> None:
    p = Config.from_text(YAML.replace("      - a\n", "")).get("p")
    assert isinstance(p, Pipeline)
    c = await p.complete(Request.of("capital of France?"))
    assert c.text == "Paris is the capital."
    assert [s.label for s in p.steps] == ["ask", "b"]
    assert Config.from_text(YAML).get("p").steps[2].prompt == "{previous}"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("prompt: \"Answer as JSON: {input}\"", "prompt: \"{question}\"",
         r"<config>:9: systems\.p\.steps\.0\.prompt: unknown placeholder \{question\}"),
        ("parser: first_line", "parser: last_line",
         r":13: systems\.p\.steps\.1\.parser: unknown parser 'last_line'"),
        ("parser: {json: answer}", "parser: {regex: '('}",
         r"steps\.0\.parser: invalid regex"),
        ("parser: {json: answer}", "parser: {json: a, regex: b}",
         r"exactly one of 'json' or 'regex'"),
        ("      - a\n", "      - nope\n", r"unknown model or system 'nope'"),
        ("name: ask}", "nme: ask}", r"unknown key 'nme' \(did you mean 'name'\?\)"),
    ],
)
def test_config_errors_say_where(old: str, new: str, message: str) -> None:
    assert old in YAML
    with pytest.raises(ConfigError, match=message):
        Config.from_text(YAML.replace(old, new)).get("p")


@pytest.mark.parametrize("path", [None, "examples/pipeline.yaml"])
def test_shipped_pipelines_do_not_wrap_a_templated_model_twice(path: str | None) -> None:
    # A step prompt that repeats its model's own "Question: ... Answer:" frame made
    # Gemma continue the template's solved examples instead of answering.
    from pathlib import Path

    from chorus.providers.local import LocalModel

    root = Path(__file__).resolve().parents[2]
    cfg = Config.load(None if path is None else root / path)
    checked = 0
    for name in cfg.system_names:
        system = cfg.get(name)
        for step in getattr(system, "steps", []) if isinstance(system, Pipeline) else []:
            model = step.model
            if isinstance(model, LocalModel) and model.prompt_template:
                frame = model.prompt_template.split("{prompt}")[0].rsplit("\n\n", 1)[-1]
                if not frame.strip():
                    continue
                sent = model.prompt_template.replace("{prompt}", step.prompt)
                assert sent.count(frame) == model.prompt_template.count(frame), (name, step.name)
                checked += 1
    assert checked >= 1
