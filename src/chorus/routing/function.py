"""A Python callable as the classifier: it gets the Request and returns a label,
``(label, confidence)``, or None to abstain. It may be sync or async; a sync one runs
inline, so it should be quick (no I/O)."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from chorus.core.errors import PatternError
from chorus.core.types import Request
from chorus.routing._base import Classifier, Decision

__all__ = ["FunctionClassifier", "interpret"]

Result = str | tuple[str, float] | None
ClassifyFn = Callable[[Request], "Result | Awaitable[Result]"]


def interpret(result: Any, name: str) -> Decision:
    """A callable's return value as a Decision; PatternError when it is neither a label,
    ``(label, confidence)`` nor None."""
    if result is None:
        return Decision(None, f"{name} abstained")
    if isinstance(result, str):
        return Decision(result, f"{name} returned {result!r}")
    if (isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], str)
            and isinstance(result[1], int | float) and not isinstance(result[1], bool)):
        label, conf = result[0], float(result[1])
        return Decision(label, f"{name} returned {label!r} ({conf:.2f})", conf,
                        {label: conf})
    raise PatternError(
        f"classifier {name} returned {type(result).__name__}; "
        "expected a label, (label, confidence) or None"
    )


class FunctionClassifier(Classifier):
    type = "function"

    def __init__(self, fn: ClassifyFn, *, name: str | None = None) -> None:
        self.fn = fn
        self.name = name or getattr(fn, "__qualname__", None) or repr(fn)

    async def classify(self, request: Request) -> Decision:
        result = self.fn(request)
        if inspect.isawaitable(result):
            result = await result
        return interpret(result, self.name)
