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

from typing import Annotated, Any, Literal

from pydantic import Field

from chorus.config.schema import ModelRef, Node, PatternConfig
from chorus.core.types import Role
from chorus.policies.guardrails import injection, output, pii, shape, topics
from chorus.policies.guardrails._checks import Action, Check, Stage
from chorus.policies.guardrails.guard import Guardrails

__all__ = ["CheckConfig", "GuardrailsConfig", "build", "build_check"]

ActionName = Literal["block", "fix", "redact", "reask", "flag"]


def _user_and_tool() -> list[Role]:
    return ["user", "tool"]


class _Base(Node):
    #: Shown in the trace and in errors; defaults to the type.
    name: str | None = None
    #: ``redact`` is another name for ``fix``.
    action: ActionName | None = None


class SizeConfig(_Base):
    type: Literal["size"]
    max_chars: int | None = Field(None, ge=1)
    max_tokens: int | None = Field(None, ge=1)
    max_messages: int | None = Field(None, ge=1)


class ShapeConfig(_Base):
    type: Literal["shape"]
    last_from_user: bool = True


class PIIConfig(_Base):
    type: Literal["pii"]
    entities: list[str] = Field(default_factory=lambda: list(pii.ENTITIES))
    #: Put the originals back into the answer (input redaction only).
    restore: bool = False
    roles: list[Role] = Field(default_factory=_user_and_tool)


class InjectionConfig(_Base):
    type: Literal["injection"]
    roles: list[Role] = Field(default_factory=_user_and_tool)


class ClassifierConfig(_Base):
    type: Literal["injection_classifier"]
    model: ModelRef
    threshold: float = Field(0.5, ge=0, le=1)
    roles: list[Role] = Field(default_factory=_user_and_tool)
    max_chars: int = Field(4000, ge=1)


class TopicsConfig(_Base):
    type: Literal["topics"]
    allow: list[str] = Field(default_factory=list, max_length=100)
    deny: list[str] = Field(default_factory=list, max_length=100)
    threshold: float = Field(0.4, ge=-1, le=1)
    #: A name under ``embedders:`` or an inline embedder; default the local MiniLM.
    embedder: str | dict[str, Any] | None = None


class JsonSchemaConfig(_Base):
    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(alias="schema")


class FilterConfig(_Base):
    type: Literal["filter"]
    patterns: list[str] = Field(default_factory=list)
    words: list[str] = Field(default_factory=list)
    replacement: str = "[removed]"
    roles: list[Role] = Field(default_factory=_user_and_tool)


class JudgeConfig(_Base):
    type: Literal["judge"]
    model: ModelRef
    policy: str = Field(min_length=1, max_length=2000)


class RefusalConfig(_Base):
    type: Literal["refusal"]


CheckConfig = Annotated[
    SizeConfig | ShapeConfig | PIIConfig | InjectionConfig | ClassifierConfig | TopicsConfig
    | JsonSchemaConfig | FilterConfig | JudgeConfig | RefusalConfig,
    Field(discriminator="type"),
]


class GuardrailsConfig(PatternConfig):
    kind: Literal["guardrails"] = "guardrails"
    inner: ModelRef
    input: list[CheckConfig] = Field(default_factory=list)
    output: list[CheckConfig] = Field(default_factory=list)
    #: Re-asks of the inner model an output check with ``action: reask`` may make.
    max_repairs: int = Field(1, ge=0, le=5)
    stream_mode: Literal["buffer", "window"] = "buffer"
    window_chars: int = Field(256, ge=16)
    overlap_chars: int = Field(64, ge=0)


def build_check(cfg: Any, b: Any, stage: Stage, index: int) -> Check:
    """The Check that one entry of ``input:`` or ``output:`` describes."""
    kw: dict[str, Any] = {"stage": stage}
    if cfg.action is not None:
        action: Action = "fix" if cfg.action == "redact" else cfg.action
        kw["action"] = action
    name = cfg.name or cfg.type
    at = (stage, index)
    if isinstance(cfg, SizeConfig):
        return shape.SizeCheck(name, max_chars=cfg.max_chars, max_tokens=cfg.max_tokens,
                               max_messages=cfg.max_messages, **kw)
    if isinstance(cfg, ShapeConfig):
        return shape.ShapeCheck(name, last_from_user=cfg.last_from_user, **kw)
    if isinstance(cfg, PIIConfig):
        return pii.PIICheck(name, entities=cfg.entities, restore=cfg.restore, roles=cfg.roles,
                            **kw)
    if isinstance(cfg, InjectionConfig):
        return injection.InjectionCheck(name, roles=cfg.roles, **kw)
    if isinstance(cfg, ClassifierConfig):
        return injection.InjectionClassifier(
            name, b.model(cfg.model, *at, "model"), threshold=cfg.threshold, roles=cfg.roles,
            max_chars=cfg.max_chars, **kw)
    if isinstance(cfg, TopicsConfig):
        return topics.TopicCheck(name, b.embedder(cfg.embedder, *at, "embedder"),
                                 allow=cfg.allow, deny=cfg.deny, threshold=cfg.threshold, **kw)
    if isinstance(cfg, JsonSchemaConfig):
        return output.JsonSchemaCheck(name, cfg.schema_, **kw)
    if isinstance(cfg, FilterConfig):
        return output.FilterCheck(name, patterns=cfg.patterns, words=cfg.words,
                                  replacement=cfg.replacement, roles=cfg.roles, **kw)
    if isinstance(cfg, JudgeConfig):
        return output.JudgeCheck(name, b.model(cfg.model, *at, "model"), cfg.policy, **kw)
    if isinstance(cfg, RefusalConfig):
        return output.RefusalCheck(name, **kw)
    raise TypeError(f"unknown check config {type(cfg).__name__}")


def _checks(b: Any, cfgs: list[Any], stage: Stage) -> list[Check]:
    out = []
    for i, c in enumerate(cfgs):
        try:
            out.append(build_check(c, b, stage, i))
        except ValueError as exc:
            raise b.error(str(exc), stage, i) from None
    return out


def build(cfg: GuardrailsConfig, b: Any) -> Guardrails:
    return Guardrails(
        b.name, b.model(cfg.inner, "inner"), input=_checks(b, cfg.input, "input"),
        output=_checks(b, cfg.output, "output"), max_repairs=cfg.max_repairs,
        stream_mode=cfg.stream_mode, window_chars=cfg.window_chars,
        overlap_chars=cfg.overlap_chars,
    )
