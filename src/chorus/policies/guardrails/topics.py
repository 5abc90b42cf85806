"""Topic allow and deny lists by embedding similarity (any Embedder; MiniLM by default).

A text is off-topic when ``allow`` is given and no allowed topic is at least
``threshold`` similar; it is denied when some ``deny`` topic is at least ``threshold``
similar. Topics are short descriptions ("cooking recipes", "medical advice"); their
embeddings are memoised by the embedder. The scores go in the trace.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from chorus.core.types import Role
from chorus.embeddings import Embedder, cosine_matrix
from chorus.policies.guardrails._checks import EMBEDDING, Check, Finding, Subject, note

__all__ = ["TopicCheck", "topic_decision"]


def _shown(score: float, threshold: float) -> str:
    """``score`` with the fewest decimals (2 or more) that keep it on its side of
    ``threshold``: 0.2994 < 0.3 is shown as 0.2994, never as "0.30 < 0.3"."""
    below = score < threshold
    for digits in range(2, 8):
        text = f"{score:.{digits}f}"
        if (float(text) < threshold) == below:
            return text
    return repr(score)


def topic_decision(allow: dict[str, float], deny: dict[str, float],
                   threshold: float) -> str | None:
    """Why the text is refused given its similarity to each topic, or None."""
    if deny:
        topic, score = max(deny.items(), key=lambda kv: kv[1])
        if score >= threshold:
            return (f"close to the denied topic {topic!r} (similarity "
                    f"{_shown(score, threshold)} >= {threshold:g})")
    if allow:
        topic, score = max(allow.items(), key=lambda kv: kv[1])
        if score < threshold:
            return (f"off-topic: closest allowed topic {topic!r} has similarity "
                    f"{_shown(score, threshold)} < {threshold:g}")
    return None


class TopicCheck(Check):
    """Keeps the conversation on allowed topics and away from denied ones."""

    tier = EMBEDDING

    def __init__(self, name: str, embedder: Embedder, *, allow: Sequence[str] = (),
                 deny: Sequence[str] = (), threshold: float = 0.4,
                 roles: Sequence[Role] = ("user",), **kw: Any) -> None:
        super().__init__(name, **kw)
        if not allow and not deny:
            raise ValueError("topics needs an allow or a deny list")
        self.embedder, self.allow, self.deny = embedder, list(allow), list(deny)
        self.threshold, self.roles = threshold, frozenset(roles)

    async def run(self, subject: Subject) -> Finding | None:
        if isinstance(subject, str):
            text = subject
        else:
            text = next((m.content for m in reversed(subject.messages) if m.role in self.roles),
                        "")
        if not text.strip():
            return None
        vectors = await self.embedder.embed([text, *self.allow, *self.deny])
        sims = np.asarray(cosine_matrix(vectors[:1], vectors[1:]))[0].tolist()
        allow = dict(zip(self.allow, sims[:len(self.allow)], strict=True))
        deny = dict(zip(self.deny, sims[len(self.allow):], strict=True))
        scores = {k: round(float(v), 3) for k, v in {**allow, **deny}.items()}
        note(scores=scores, threshold=self.threshold)
        why = topic_decision(allow, deny, self.threshold)
        return Finding(why, details={"scores": scores}) if why else None
