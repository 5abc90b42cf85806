"""Ask a model which label fits: a JSON schema with the label set as an enum.

Providers that constrain decoding (llama.cpp, OpenAI structured outputs) then always
answer a valid label; for those that don't, the answer is read tolerantly: any case,
quotes, extra words ("Label: math." is ``math``). An answer naming no known label
abstains, so the Router takes its default route.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from chorus.core.errors import MalformedResponse
from chorus.core.model import Model
from chorus.core.structured import ask_json
from chorus.core.types import Message, Params, Request
from chorus.routing._base import Classifier, Decision

__all__ = ["LLMClassifier", "find_label", "label_pattern", "label_schema"]

_SHOWN = 60
_SEP = re.compile(r"[\s_-]+")
_EDGE = " \t\r\n\"'`.,:;!?*()[]{}"
DEFAULT_INSTRUCTIONS = (
    "Classify the user's message. Answer with the one label that fits best, "
    'as JSON {"label": "<label>"}.'
)


def label_schema(labels: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": list(labels)}},
        "required": ["label"],
        "additionalProperties": False,
    }


def _norm(text: str) -> str:
    return _SEP.sub(" ", text.strip().lower())


def label_pattern(labels: Sequence[str]) -> re.Pattern[str]:
    """Any label as a whole word, in any case, with ``_``, ``-`` and spaces alike."""
    alts = []
    for label in sorted(labels, key=len, reverse=True):
        words = [re.escape(w) for w in _SEP.split(label.strip()) if w]
        alts.append(r"[\s_-]+".join(words))
    return re.compile(r"(?<!\w)(?:" + "|".join(alts) + r")(?!\w)", re.IGNORECASE)


def find_label(answer: str, labels: Sequence[str],
               pattern: re.Pattern[str] | None = None) -> str | None:
    """The label ``answer`` names: the whole answer when it is one, else the first
    label mentioned in it; None when it names none."""
    by_norm = {_norm(label): label for label in labels}
    exact = by_norm.get(_norm(answer.strip(_EDGE)))
    if exact is not None:
        return exact
    m = (pattern or label_pattern(labels)).search(answer)
    return by_norm.get(_norm(m.group(0))) if m else None


class LLMClassifier(Classifier):
    """A model picks one of ``labels`` (a list, or label -> description)."""

    type = "llm"
    labels: tuple[str, ...]

    def __init__(
        self,
        model: Model,
        labels: Sequence[str] | Mapping[str, str],
        *,
        instructions: str | None = None,
        max_tokens: int = 32,
    ) -> None:
        names = list(labels)
        if not names:
            raise ValueError("an llm classifier needs at least one label")
        if len(set(names)) != len(names):
            raise ValueError("an llm classifier's labels must be distinct")
        self.model = model
        self.labels = tuple(names)
        self.descriptions = dict(labels) if isinstance(labels, Mapping) else {}
        self.instructions = instructions or DEFAULT_INSTRUCTIONS
        self.max_tokens = max_tokens
        self.schema = label_schema(names)
        self.pattern = label_pattern(names)
        lines = [
            f"- {n}: {self.descriptions[n]}" if self.descriptions.get(n) else f"- {n}"
            for n in names
        ]
        self.system = f"{self.instructions}\nLabels:\n" + "\n".join(lines)
        self.params = Params(temperature=0.0, max_tokens=max_tokens)

    def models(self) -> Sequence[Model]:
        return (self.model,)

    async def classify(self, request: Request) -> Decision:
        ask = Request(
            (Message("system", self.system), Message("user", request.prompt)),
            self.params,
            request.metadata,
        )
        try:
            value, calls = await ask_json(self.model, ask, self.schema, repair=False)
        except MalformedResponse as exc:
            made = getattr(exc, "completions", None)
            if not made:
                raise
            # Not JSON at all: an unconstrained provider; read the plain text instead.
            calls, answer = made, made[-1].text
        else:
            label = value.get("label") if isinstance(value, dict) else value
            answer = label if isinstance(label, str) else calls[-1].text
        found = find_label(answer, self.labels, self.pattern)
        shown = answer.strip()
        shown = shown if len(shown) <= _SHOWN else shown[: _SHOWN - 1] + "…"
        if found is None:
            reason = f"{self.model.name} answered {shown!r}, not a known label"
        else:
            reason = f"{self.model.name} answered {shown!r}"
        return Decision(found, reason, calls=tuple(calls))
