from __future__ import annotations

import pytest

from chorus.core.errors import PatternError
from chorus.core.types import Request
from chorus.routing import FunctionClassifier


def by_length(request: Request) -> str | tuple[str, float] | None:
    n = len(request.prompt)
    if n == 0:
        return None
    return "long" if n > 20 else ("short", 0.6)


async def by_tenant(request: Request) -> str:
    return str(request.metadata.get("tenant", "free"))


async def test_label_confidence_and_abstention() -> None:
    clf = FunctionClassifier(by_length)
    d = await clf.classify(Request.of("x" * 30))
    assert (d.label, d.confidence, d.reason) == ("long", None, "by_length returned 'long'")
    d = await clf.classify(Request.of("hi"))
    assert (d.label, d.confidence) == ("short", 0.6)
    assert d.scores == {"short": 0.6}
    d = await clf.classify(Request.of(""))
    assert d.label is None and d.reason == "by_length abstained"


async def test_async_function_sees_metadata() -> None:
    req = Request(Request.of("x").messages, metadata={"tenant": "pro"})
    assert (await FunctionClassifier(by_tenant).classify(req)).label == "pro"


@pytest.mark.parametrize("bad", [3, ("a", "b"), ("a", True), ["a", 0.5]])
async def test_bad_return_values_are_pattern_errors(bad: object) -> None:
    clf = FunctionClassifier(lambda r: bad, name="bad_fn")  # type: ignore[arg-type,return-value]
    with pytest.raises(PatternError, match="classifier bad_fn returned"):
        await clf.classify(Request.of("x"))
