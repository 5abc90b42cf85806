"""Pipeline: models called one after another, each step's prompt made from the original
input and the previous step's output.

    Pipeline("p", [Step(smol, "Summarise:\\n{input}"),
                   Step(gemma, "Translate to French:\\n{previous}", parser=first_line)])

A prompt template is ``str.format``-style with two fields, ``{input}`` (the request's
prompt) and ``{previous}`` (the last step's output; the input for the first step); any
other field is an error when the pipeline is built. A step may set its own ``system``
message and an output parser (strip, first_line, json, regex). A failing step raises
StepFailed naming it, with the cause kept and the pipeline's span (the failed step's
span included) on the error's ``span``.

Tools (``Params.tools``) go to the last step only: the earlier steps write text for the
next prompt, and a tool call there would leave nothing to pass on. The answer's tool
calls are the last step's.
"""

from __future__ import annotations

import json
import re
import string
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, model_validator

from chorus.config.schema import ModelRef, Node, PatternConfig
from chorus.core.compose import combine
from chorus.core.errors import (
    BudgetExceeded,
    Cancelled,
    ChorusError,
    DeadlineExceeded,
    GuardrailViolation,
    MalformedResponse,
    StepFailed,
)
from chorus.core.model import Model, call, error_span
from chorus.core.registry import BuildContext
from chorus.core.structured import parse_json
from chorus.core.types import Completion, Message, Request, Span

__all__ = [
    "PARSERS",
    "Parser",
    "Pipeline",
    "PipelineConfig",
    "Step",
    "build",
    "check_template",
    "first_line",
    "json_value",
    "regex",
    "strip",
]

Parser = Callable[[str], str]
FIELDS = ("input", "previous")
_SHOWN = 200
_REQUEST_LEVEL = (BudgetExceeded, Cancelled, DeadlineExceeded, GuardrailViolation)


# -- output parsers: str -> str, ValueError when the output does not fit ----------------


def strip(text: str) -> str:
    return text.strip()


def first_line(text: str) -> str:
    """The first non-blank line, stripped."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def json_value(key: str | None = None) -> Parser:
    """The first JSON value in the output (or its ``key``), as compact JSON; a string
    value comes out as the bare string."""

    def parse(text: str) -> str:
        value = parse_json(text)
        if key is not None:
            if not isinstance(value, dict) or key not in value:
                raise ValueError(f"the JSON answer has no key {key!r}")
            value = value[key]
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    parse.__name__ = "json" if key is None else f"json[{key}]"
    return parse


def regex(pattern: str, group: int | str | None = None) -> Parser:
    """The first match of ``pattern`` in the output: ``group`` of it (default: group 1
    when the pattern has groups, else the whole match)."""
    compiled = re.compile(pattern, re.DOTALL)
    grp: int | str = group if group is not None else (1 if compiled.groups else 0)
    if isinstance(grp, int) and grp > compiled.groups:
        raise ValueError(f"regex {pattern!r} has no group {grp}")
    if isinstance(grp, str) and grp not in compiled.groupindex:
        raise ValueError(f"regex {pattern!r} has no group named {grp!r}")

    def parse(text: str) -> str:
        m = compiled.search(text)
        if m is None:
            raise ValueError(f"output does not match {pattern!r}")
        return m.group(grp) or ""

    parse.__name__ = f"regex({pattern!r})"
    return parse


PARSERS: dict[str, Parser] = {"strip": strip, "first_line": first_line, "json": json_value()}


def check_template(template: str) -> None:
    """ValueError when ``template`` is not valid or uses a field other than
    ``{input}`` and ``{previous}``."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(
            f"bad prompt template {template!r}: {exc} (write {{{{ for a literal brace)"
        ) from None
    for _, field, _, _ in parsed:
        if field is not None and field not in FIELDS:
            shown = "{" + field + "}" if field else "{}"
            raise ValueError(f"unknown placeholder {shown} in prompt template; use {{input}} "
                             "or {previous} (write {{ and }} for literal braces)")


def _short(text: str) -> str:
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


@dataclass(frozen=True, slots=True)
class Step:
    """One model call of a pipeline. ``name`` defaults to the model's name."""

    model: Model
    prompt: str = "{previous}"
    name: str | None = None
    system: str | None = None
    parser: Parser | None = None

    def __post_init__(self) -> None:
        check_template(self.prompt)

    @property
    def label(self) -> str:
        return self.name or self.model.name


class Pipeline(Model):
    """Call each step in order; the last step's (parsed) output is the answer."""

    kind = "pipeline"
    family = "sequential"

    def __init__(self, name: str, steps: Sequence[Step | Model]) -> None:
        super().__init__(name)
        if not steps:
            raise ValueError("a pipeline needs at least one step")
        self.steps = tuple(s if isinstance(s, Step) else Step(s) for s in steps)

    def children(self) -> Sequence[Model]:
        return list({id(s.model): s.model for s in self.steps}.values())

    def _request(self, step: Step, request: Request, prompt: str) -> Request:
        if step is not self.steps[-1]:
            request = request.without_tools()
        if step.system is None:
            return request.with_prompt(prompt)
        msgs = (Message("system", step.system), Message("user", prompt))
        return Request(msgs, request.params, request.metadata)

    async def complete(self, request: Request) -> Completion:
        started = time.perf_counter()
        original = request.prompt
        previous = original
        parts: list[Completion] = []
        trail: list[dict[str, Any]] = []
        for i, step in enumerate(self.steps, 1):
            prompt = step.prompt.format(input=original, previous=previous)
            trail.append({"step": i, "name": step.label, "model": step.model.name,
                          "prompt": _short(prompt)})
            t0 = time.perf_counter()
            try:
                done = await call(step.model, self._request(step, request, prompt))
            except _REQUEST_LEVEL:
                raise
            except ChorusError as exc:
                raise self._failed(i, step, exc, started, parts,
                                   [error_span(step.model, exc, t0)], trail) from exc
            parts.append(done)
            previous = done.text
            if step.parser is not None:
                try:
                    previous = step.parser(done.text)
                except ValueError as exc:
                    name = getattr(step.parser, "__name__", "parser")
                    cause = MalformedResponse(f"output parser {name} failed: {exc}",
                                              model=step.model.name)
                    raise self._failed(i, step, cause, started, parts, [], trail) from exc
        return combine(self, previous, started=started, parts=parts, winner=parts[-1],
                       attributes={"steps": trail})

    def _failed(self, index: int, step: Step, exc: ChorusError, started: float,
                parts: list[Completion], failed: list[Span],
                trail: list[dict[str, Any]]) -> StepFailed:
        err = StepFailed(self.name, f"#{index} {step.label}", exc)
        attrs = {"steps": trail, "failed_step": {"step": index, "name": step.label}}
        span = combine(self, "", started=started, parts=parts, failed=failed,
                       attributes=attrs).trace
        assert span is not None
        span.error = str(err)
        err.trace = span
        return err


# -- YAML -------------------------------------------------------------------------------


class ParserConfig(Node):
    """``strip`` | ``first_line`` | ``json`` | ``{json: KEY}`` | ``{regex: PATTERN, group: N}``."""

    name: str | None = None
    json_key: str | None = Field(None, alias="json")
    regex: str | None = None
    group: int | str | None = None

    @model_validator(mode="before")
    @classmethod
    def _named(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _one(self) -> ParserConfig:
        if sum(v is not None for v in (self.name, self.json_key, self.regex)) != 1:
            raise ValueError("a parser mapping needs exactly one of 'json' or 'regex'")
        if self.group is not None and self.regex is None:
            raise ValueError("'group' goes with 'regex'")
        return self

    def build(self) -> Parser:
        if self.name is not None:
            if self.name not in PARSERS:
                raise ValueError(f"unknown parser {self.name!r}; known: {', '.join(PARSERS)}, "
                                 "or a mapping {json: KEY} / {regex: PATTERN, group: N}")
            return PARSERS[self.name]
        if self.regex is not None:
            try:
                return regex(self.regex, self.group)
            except re.error as exc:
                raise ValueError(f"invalid regex {self.regex!r}: {exc}") from None
        return json_value(self.json_key)


class StepConfig(Node):
    """A step; a bare model name is the step ``{model: NAME}``."""

    model: ModelRef
    #: ``{input}`` is the original prompt, ``{previous}`` the last step's output.
    prompt: str = "{previous}"
    name: str | None = None
    system: str | None = None
    parser: ParserConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare(cls, data: Any) -> Any:
        return {"model": data} if isinstance(data, str) else data


class PipelineConfig(PatternConfig):
    kind: Literal["pipeline"] = "pipeline"
    steps: list[StepConfig] = Field(min_length=1)


def build(cfg: PipelineConfig, b: BuildContext) -> Pipeline:
    steps: list[Step] = []
    for i, s in enumerate(cfg.steps):
        try:
            check_template(s.prompt)
        except ValueError as exc:
            raise b.error(str(exc), "steps", i, "prompt") from None
        try:
            parser = s.parser.build() if s.parser is not None else None
        except ValueError as exc:
            raise b.error(str(exc), "steps", i, "parser") from None
        steps.append(Step(b.model(s.model, "steps", i, "model"), s.prompt, s.name, s.system,
                          parser))
    return Pipeline(b.name, steps)
