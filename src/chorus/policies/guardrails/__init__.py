"""Guardrails: input validation, output filtering and safety checks around one Model.

The wrapper is ``Guardrails`` (YAML ``kind: guardrails``); each check is a ``Check``
(YAML ``type:`` under ``input:`` or ``output:``). See ``guard`` for the order checks run
in and how streaming is checked.
"""

from __future__ import annotations

from chorus.policies.guardrails._checks import (
    Action,
    Check,
    Finding,
    Hit,
    Stage,
    TextCheck,
    ask,
    ask_json,
    note,
)
from chorus.policies.guardrails._config import CheckConfig, GuardrailsConfig, build
from chorus.policies.guardrails.guard import Guardrails
from chorus.policies.guardrails.injection import (
    InjectionCheck,
    InjectionClassifier,
    find_injection,
)
from chorus.policies.guardrails.output import (
    FilterCheck,
    JsonSchemaCheck,
    JudgeCheck,
    RefusalCheck,
    find_refusal,
)
from chorus.policies.guardrails.pii import PIICheck, find_pii
from chorus.policies.guardrails.shape import ShapeCheck, SizeCheck
from chorus.policies.guardrails.topics import TopicCheck

__all__ = [
    "Action",
    "Check",
    "CheckConfig",
    "FilterCheck",
    "Finding",
    "Guardrails",
    "GuardrailsConfig",
    "Hit",
    "InjectionCheck",
    "InjectionClassifier",
    "JsonSchemaCheck",
    "JudgeCheck",
    "PIICheck",
    "RefusalCheck",
    "ShapeCheck",
    "SizeCheck",
    "Stage",
    "TextCheck",
    "TopicCheck",
    "ask",
    "ask_json",
    "build",
    "find_injection",
    "find_pii",
    "find_refusal",
    "note",
]
