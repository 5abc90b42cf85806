"""Checks on the answer (several also work on the input): JSON schema validation with a
repair re-ask, regex and word-list filters, a judge model for policy checks, and refusal
detection."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Final

import jsonschema

from chorus.core.model import Model
from chorus.core.structured import parse_json
from chorus.core.types import Message, Request
from chorus.policies.guardrails._checks import (
    MODEL,
    Action,
    Check,
    Finding,
    Hit,
    Subject,
    TextCheck,
    ask_json,
    note,
)

__all__ = ["FilterCheck", "JUDGE_SCHEMA", "JsonSchemaCheck", "JudgeCheck", "RefusalCheck",
           "find_refusal", "schema_error"]


def schema_error(validator: jsonschema.protocols.Validator, text: str) -> str | None:
    """Why ``text`` is not JSON that follows the validator's schema, or None."""
    try:
        value = parse_json(text)
    except ValueError as exc:
        return str(exc)
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"at {where}: {error.message[:300]}"


class JsonSchemaCheck(Check):
    """The answer must be JSON following ``schema``. The default action, ``reask``,
    asks the inner model again with the validation error (the wrapper's ``max_repairs``
    bounds the loop); ``fix`` keeps only the JSON value when the answer has text around it."""

    actions: ClassVar[tuple[Action, ...]] = ("block", "fix", "reask", "flag")
    needs_whole = True

    def __init__(self, name: str, schema: Mapping[str, Any], *, action: Action = "reask",
                 **kw: Any) -> None:
        kw.setdefault("stage", "output")
        super().__init__(name, action=action, **kw)
        cls = jsonschema.validators.validator_for(schema)
        try:
            cls.check_schema(dict(schema))
        except jsonschema.exceptions.SchemaError as exc:
            raise ValueError(f"invalid JSON schema: {exc.message}") from None
        self.schema = dict(schema)
        self.validator = cls(self.schema)

    async def run(self, subject: Subject) -> Finding | None:
        text = subject if isinstance(subject, str) else subject.prompt
        error = schema_error(self.validator, text)
        if error is None:
            if self.action == "fix":
                clean = json.dumps(parse_json(text), ensure_ascii=False)
                if clean != text.strip():
                    return Finding("the JSON value had text around it", fixed=clean)
            return None
        hint = (f"Your previous answer did not follow the required JSON schema ({error}). "
                f"Answer again with only a JSON value that follows this schema:\n"
                f"{json.dumps(self.schema)}")
        return Finding(f"not valid JSON for the schema: {error}", hint=hint)


class FilterCheck(TextCheck):
    """Regexes and whole words (case-insensitive) that must not appear; ``fix``
    replaces each match with ``replacement``."""

    actions: ClassVar[tuple[Action, ...]] = ("block", "fix", "flag")

    def __init__(self, name: str = "filter", *, patterns: Sequence[str] = (),
                 words: Sequence[str] = (), replacement: str = "[removed]", **kw: Any) -> None:
        super().__init__(name, **kw)
        if not patterns and not words:
            raise ValueError("filter needs patterns or words")
        parts = [f"(?:{p})" for p in patterns]
        if words:
            alt = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
            parts.append(rf"\b(?:{alt})\b")
        try:
            self.regex = re.compile("|".join(parts), re.IGNORECASE)
        except re.error as exc:
            raise ValueError(f"bad filter pattern: {exc}") from None
        self.replacement = replacement

    def scan(self, text: str) -> list[Hit]:
        return [Hit("match", *m.span()) for m in self.regex.finditer(text) if m.end() > m.start()]

    def replace(self, text: str, hits: Sequence[Hit], state: dict[str, Any]) -> str:
        return self.regex.sub(self.replacement, text)

    def reason(self, hits: Sequence[Hit]) -> str:
        return f"{len(hits)} filtered match(es)"


_REFUSAL: Final = re.compile(
    r"\bI(?:'m| am)? ?(?:sorry|afraid),? (?:but )?I (?:can(?:'|no)t|cannot|won't|am unable|"
    r"am not able)|\bI (?:can(?:'|no)?t|cannot|won't|will not) (?:help|assist|provide|comply|"
    r"do that|answer|fulfil+|support|create|generate|share)|\bI(?:'m| am) (?:not able|unable) to"
    r" (?:help|assist|provide|comply|answer|do)|\bas an AI(?: language model)?,? I (?:can(?:'|no)?t"
    r"|cannot|don't|do not|am not able)|\bI must (?:decline|refuse)|\bI(?:'m| am) not "
    r"(?:allowed|permitted) to",
    re.IGNORECASE,
)


def find_refusal(text: str, *, head: int = 400) -> re.Match[str] | None:
    """A refusal phrase in the first ``head`` characters (where models put them)."""
    return _REFUSAL.search(text.replace("\u2019", "'"), 0, head)


class RefusalCheck(Check):
    """Detects an answer that refuses ("I can't help with that"); ``flag`` or ``reask``."""

    actions: ClassVar[tuple[Action, ...]] = ("flag", "reask", "block")
    needs_whole = True

    def __init__(self, name: str = "refusal", *, action: Action = "flag", **kw: Any) -> None:
        kw.setdefault("stage", "output")
        super().__init__(name, action=action, **kw)

    async def run(self, subject: Subject) -> Finding | None:
        text = subject if isinstance(subject, str) else subject.prompt
        m = find_refusal(text)
        if m is None:
            return None
        return Finding(f"the answer refuses ({m.group(0)!r})", span=m.span(),
                       hint="Please answer the question directly if you can do so safely.")


JUDGE_SCHEMA: Final = {
    "type": "object",
    "properties": {
        "allowed": {"type": "boolean"},
        "reason": {"type": "string", "maxLength": 200},
    },
    "required": ["allowed", "reason"],
    "additionalProperties": False,
}


def _judged(value: Any) -> tuple[bool, str]:
    if not isinstance(value, dict) or not isinstance(value.get("allowed"), bool):
        raise ValueError(f"the judge answered {value!r}, not the expected verdict")
    return value["allowed"], str(value.get("reason", ""))[:200]


class JudgeCheck(Check):
    """Asks a judge model whether the text follows ``policy``."""

    tier = MODEL
    actions: ClassVar[tuple[Action, ...]] = ("block", "reask", "flag")
    needs_whole = True

    def __init__(self, name: str, model: Model, policy: str, **kw: Any) -> None:
        super().__init__(name, **kw)
        self.model, self.policy = model, policy

    async def run(self, subject: Subject) -> Finding | None:
        text = subject if isinstance(subject, str) else subject.prompt
        what = "an AI assistant's answer" if isinstance(subject, str) else "a user's message"
        req = Request((
            Message("system", f"You check {what} against a policy and answer only with JSON "
                              '{"allowed": true or false, "reason": "one short sentence"}.\n'
                              f"Policy: {self.policy}"),
            Message("user", f"Text to check:\n<<<\n{text[:6000]}\n>>>"),
        ))
        allowed, reason = await ask_json(self.model, req, JUDGE_SCHEMA, _judged)
        note(allowed=allowed, judge=self.model.name, verdict=reason)
        if allowed:
            return None
        return Finding(f"judge {self.model.name!r}: {reason or 'not allowed by the policy'}",
                       hint=f"Your previous answer broke this policy: {self.policy}. "
                            f"({reason}) Answer again following it.")
