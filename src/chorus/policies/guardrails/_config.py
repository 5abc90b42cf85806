"""The YAML of the guardrails wrapper and of each check (chosen by ``type:``).

    safe:
      kind: guardrails
      inner: single
      input:
        - {type: size, max_chars: 8000, max_tokens: 2000}
        - {type: shape}
        - {type: pii, action: redact, restore: true}
        - {type: injection}
        - {type: injection_classifier, model: smollm2, threshold: 0.8}
        - {type: topics, deny: [medical advice], threshold: 0.5}
      output:
        - {type: json_schema, schema: {type: object}}
        - {type: filter, words: [darn], action: fix}
        - {type: pii, action: fix}
        - {type: judge, model: smollm2, policy: "No financial advice."}
        - {type: refusal, action: reask}
      max_repairs: 2
      stream_mode: window
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from chorus.config.schema import ModelRef, Node, PatternConfig
from chorus.core.registry import BuildContext, Registry
from chorus.core.types import Role
from chorus.policies.guardrails import injection, output, pii, shape, topics
from chorus.policies.guardrails._checks import Action, Check, Stage
from chorus.policies.guardrails.guard import Guardrails

__all__ = ["CheckConfig", "GuardrailsConfig", "build", "register"]

ActionName = Literal["block", "fix", "redact", "reask", "flag"]


def _user_and_tool() -> list[Role]:
    return ["user", "tool"]


class CheckConfig(Node):
    """Keys every check accepts; a check's own config subclasses this (a plugin's too)
    and narrows ``type`` to its name."""

    type: str
    #: Shown in the trace and in errors; defaults to the type.
    name: str | None = None
    #: ``redact`` is another name for ``fix``.
    action: ActionName | None = None

    def label(self) -> str:
        """The check's name: ``name:``, else its type."""
        return self.name or self.type

    def common(self, stage: Stage) -> dict[str, Any]:
        """The keyword arguments every ``Check`` takes: its stage, and its action when
        the YAML sets one."""
        kw: dict[str, Any] = {"stage": stage}
        if self.action is not None:
            action: Action = "fix" if self.action == "redact" else self.action
            kw["action"] = action
        return kw


class SizeConfig(CheckConfig):
    type: Literal["size"]
    max_chars: int | None = Field(None, ge=1)
    max_tokens: int | None = Field(None, ge=1)
    max_messages: int | None = Field(None, ge=1)


class ShapeConfig(CheckConfig):
    type: Literal["shape"]
    last_from_user: bool = True


class PIIConfig(CheckConfig):
    type: Literal["pii"]
    entities: list[str] = Field(default_factory=lambda: list(pii.ENTITIES))
    #: Put the originals back into the answer (input redaction only).
    restore: bool = False
    roles: list[Role] = Field(default_factory=_user_and_tool)


class InjectionConfig(CheckConfig):
    type: Literal["injection"]
    roles: list[Role] = Field(default_factory=_user_and_tool)


class ClassifierConfig(CheckConfig):
    type: Literal["injection_classifier"]
    model: ModelRef
    threshold: float = Field(0.5, ge=0, le=1)
    roles: list[Role] = Field(default_factory=_user_and_tool)
    max_chars: int = Field(4000, ge=1)


class TopicsConfig(CheckConfig):
    type: Literal["topics"]
    allow: list[str] = Field(default_factory=list, max_length=100)
    deny: list[str] = Field(default_factory=list, max_length=100)
    threshold: float = Field(0.4, ge=-1, le=1)
    #: A name under ``embedders:`` or an inline embedder; default the local MiniLM.
    embedder: str | dict[str, Any] | None = None


class JsonSchemaConfig(CheckConfig):
    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(alias="schema")


class FilterConfig(CheckConfig):
    type: Literal["filter"]
    patterns: list[str] = Field(default_factory=list)
    words: list[str] = Field(default_factory=list)
    replacement: str = "[removed]"
    roles: list[Role] = Field(default_factory=_user_and_tool)


class JudgeConfig(CheckConfig):
    type: Literal["judge"]
    model: ModelRef
    policy: str = Field(min_length=1, max_length=2000)


class RefusalConfig(CheckConfig):
    type: Literal["refusal"]


class GuardrailsConfig(PatternConfig):
    kind: Literal["guardrails"] = "guardrails"
    inner: ModelRef
    #: Checks, each ``{type: NAME, ...}`` (a built-in or a plugin's).
    input: list[dict[str, Any]] = Field(default_factory=list)
    output: list[dict[str, Any]] = Field(default_factory=list)
    #: Re-asks of the inner model an output check with ``action: reask`` may make.
    max_repairs: int = Field(1, ge=0, le=5)
    stream_mode: Literal["buffer", "window"] = "buffer"
    window_chars: int = Field(256, ge=16)
    overlap_chars: int = Field(64, ge=0)


def _size(cfg: SizeConfig, b: BuildContext, stage: Stage) -> Check:
    return shape.SizeCheck(cfg.label(), max_chars=cfg.max_chars, max_tokens=cfg.max_tokens,
                           max_messages=cfg.max_messages, **cfg.common(stage))


def _shape(cfg: ShapeConfig, b: BuildContext, stage: Stage) -> Check:
    return shape.ShapeCheck(cfg.label(), last_from_user=cfg.last_from_user, **cfg.common(stage))


def _pii(cfg: PIIConfig, b: BuildContext, stage: Stage) -> Check:
    return pii.PIICheck(cfg.label(), entities=cfg.entities, restore=cfg.restore,
                        roles=cfg.roles, **cfg.common(stage))


def _injection(cfg: InjectionConfig, b: BuildContext, stage: Stage) -> Check:
    return injection.InjectionCheck(cfg.label(), roles=cfg.roles, **cfg.common(stage))


def _classifier(cfg: ClassifierConfig, b: BuildContext, stage: Stage) -> Check:
    return injection.InjectionClassifier(
        cfg.label(), b.model(cfg.model, "model"), threshold=cfg.threshold, roles=cfg.roles,
        max_chars=cfg.max_chars, **cfg.common(stage))


def _topics(cfg: TopicsConfig, b: BuildContext, stage: Stage) -> Check:
    return topics.TopicCheck(cfg.label(), b.embedder(cfg.embedder, "embedder"), allow=cfg.allow,
                             deny=cfg.deny, threshold=cfg.threshold, **cfg.common(stage))


def _json_schema(cfg: JsonSchemaConfig, b: BuildContext, stage: Stage) -> Check:
    return output.JsonSchemaCheck(cfg.label(), cfg.schema_, **cfg.common(stage))


def _filter(cfg: FilterConfig, b: BuildContext, stage: Stage) -> Check:
    return output.FilterCheck(cfg.label(), patterns=cfg.patterns, words=cfg.words,
                              replacement=cfg.replacement, roles=cfg.roles, **cfg.common(stage))


def _judge(cfg: JudgeConfig, b: BuildContext, stage: Stage) -> Check:
    return output.JudgeCheck(cfg.label(), b.model(cfg.model, "model"), cfg.policy,
                             **cfg.common(stage))


def _refusal(cfg: RefusalConfig, b: BuildContext, stage: Stage) -> Check:
    return output.RefusalCheck(cfg.label(), **cfg.common(stage))


def register(registry: Registry) -> None:
    """Register the built-in guardrail checks (through ``chorus.policies.register``)."""
    registry.check("size", SizeConfig, _size, "caps on characters, tokens and messages")
    registry.check("shape", ShapeConfig, _shape, "a well-formed conversation")
    registry.check("pii", PIIConfig, _pii, "personal data (redact, restore)")
    registry.check("injection", InjectionConfig, _injection, "prompt injection patterns")
    registry.check("injection_classifier", ClassifierConfig, _classifier,
                   "a model scores prompt injection")
    registry.check("topics", TopicsConfig, _topics, "allowed and denied topics by embedding")
    registry.check("json_schema", JsonSchemaConfig, _json_schema,
                   "the answer follows a JSON schema")
    registry.check("filter", FilterConfig, _filter, "words and patterns removed or blocked")
    registry.check("judge", JudgeConfig, _judge, "a model judges the answer against a policy")
    registry.check("refusal", RefusalConfig, _refusal, "the answer refuses")


def _checks(b: BuildContext, cfgs: list[dict[str, Any]], stage: Stage) -> list[Check]:
    return [b.part("check", c, stage, i, args=(stage,)) for i, c in enumerate(cfgs)]


def build(cfg: GuardrailsConfig, b: BuildContext) -> Guardrails:
    return Guardrails(
        b.name, b.model(cfg.inner, "inner"), input=_checks(b, cfg.input, "input"),
        output=_checks(b, cfg.output, "output"), max_repairs=cfg.max_repairs,
        stream_mode=cfg.stream_mode, window_chars=cfg.window_chars,
        overlap_chars=cfg.overlap_chars,
    )
