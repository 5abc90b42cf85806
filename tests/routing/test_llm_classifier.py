from __future__ import annotations

import pytest

from chorus.core.errors import RateLimitError
from chorus.core.types import Request, Usage
from chorus.providers.scripted import ScriptedModel
from chorus.routing import LLMClassifier, find_label

LABELS = ["math", "sentiment", "general", "tech_support"]


@pytest.mark.parametrize(
    ("answer", "label"),
    [
        ("math", "math"),
        ("MATH", "math"),
        ('"sentiment"', "sentiment"),
        ("Label: math.", "math"),
        ("The answer is: **general**", "general"),
        ("tech support", "tech_support"),
        ("Tech-Support", "tech_support"),
        ("I think this is math, not sentiment", "math"),
        ("mathematics", None),
        ("poetry", None),
        ("", None),
    ],
)
def test_find_label_reads_messy_answers(answer: str, label: str | None) -> None:
    assert find_label(answer, LABELS) == label


async def test_asks_with_an_enum_schema_and_the_labels_in_the_system_prompt() -> None:
    model = ScriptedModel("clf", replies=['{"label": "math"}'])
    clf = LLMClassifier(model, {"math": "arithmetic and algebra", "general": ""})
    d = await clf.classify(Request.of("What is 2+2?", system="be nice"))
    assert d.label == "math"
    assert d.reason == "clf answered 'math'"
    sent = model.calls[0]
    schema = sent.params.response_format
    assert schema is not None and not isinstance(schema, str)
    assert schema["properties"]["label"]["enum"] == ["math", "general"]  # type: ignore[index]
    assert sent.params.temperature == 0.0 and sent.params.max_tokens == 32
    assert sent.prompt == "What is 2+2?"
    assert sent.system is not None
    assert "- math: arithmetic and algebra" in sent.system and "- general" in sent.system
    assert "be nice" not in sent.system
    assert len(d.calls) == 1 and d.calls[0].model == "clf"


@pytest.mark.parametrize(
    "reply", ['{"label": "Math"}', "Label: math.", '```json\n{"label": "math "}\n```', '"math"']
)
async def test_unconstrained_answers_still_parse_without_a_repair_call(reply: str) -> None:
    model = ScriptedModel("clf", replies=[reply, '{"label": "general"}'])
    d = await LLMClassifier(model, LABELS).classify(Request.of("2+2"))
    assert d.label == "math"
    assert len(model.calls) == 1


async def test_an_unknown_label_abstains_with_the_answer_in_the_reason() -> None:
    model = ScriptedModel("clf", replies=['{"label": "poetry"}'], usage=Usage(10, 3))
    d = await LLMClassifier(model, LABELS).classify(Request.of("a haiku"))
    assert d.label is None
    assert d.reason == "clf answered 'poetry', not a known label"
    assert d.calls[0].usage == Usage(10, 3)


async def test_provider_errors_propagate() -> None:
    model = ScriptedModel("clf", replies=[RateLimitError("slow down", model="clf")])
    with pytest.raises(RateLimitError):
        await LLMClassifier(model, LABELS).classify(Request.of("x"))


def test_labels_must_be_given_and_distinct() -> None:
    m = ScriptedModel("clf", default="x")
    with pytest.raises(ValueError, match="at least one label"):
        LLMClassifier(m, [])
    with pytest.raises(ValueError, match="distinct"):
        LLMClassifier(m, ["a", "a"])
