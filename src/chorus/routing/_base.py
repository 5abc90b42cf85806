"""What every classifier shares: the Decision it returns and how a Router turns a
Decision into a route."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from chorus.core.model import Model
from chorus.core.types import Completion, Request

__all__ = ["Classifier", "Decision", "resolve"]

_NO_SCORES: Mapping[str, float] = {}


@dataclass(frozen=True, slots=True)
class Decision:
    """A classifier's answer. ``label`` is None when it abstains; ``reason`` is one
    line for the trace; ``calls`` are the model calls it made (their cost counts)."""

    label: str | None
    reason: str
    confidence: float | None = None
    scores: Mapping[str, float] = field(default_factory=lambda: _NO_SCORES)
    calls: tuple[Completion, ...] = ()

    def attributes(self) -> dict[str, Any]:
        conf = None if self.confidence is None else round(self.confidence, 4)
        out: dict[str, Any] = {"label": self.label, "confidence": conf}
        if self.scores:
            out["scores"] = {k: round(v, 4) for k, v in self.scores.items()}
        return out


class Classifier(ABC):
    """Picks a label for a request. ``labels`` is the set it can answer (None when
    it cannot be known ahead, as for a Python function)."""

    #: The ``type:`` name used in YAML.
    type: ClassVar[str] = "classifier"
    labels: tuple[str, ...] | None = None

    @abstractmethod
    async def classify(self, request: Request) -> Decision:
        """Decide the label of ``request`` (None to abstain)."""

    def models(self) -> Sequence[Model]:
        """The Models this classifier calls (empty unless it asks a model)."""
        return ()


def resolve(
    decision: Decision,
    routes: Collection[str],
    default: str,
    min_confidence: float | None = None,
) -> tuple[str, str]:
    """The route a decision leads to, and why (the default for an abstention, an
    unknown label or a confidence below ``min_confidence``)."""
    label = decision.label
    if label is None:
        return default, f"{decision.reason} → {default}"
    if label not in routes:
        return default, f"{decision.reason}; no route {label!r} → {default}"
    conf = decision.confidence
    if min_confidence is not None and conf is not None and conf < min_confidence:
        return default, (
            f"{decision.reason}; confidence {conf:.2f} < {min_confidence:g} → {default}"
        )
    return label, decision.reason
