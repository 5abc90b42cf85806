"""Input limits and message shape: size (characters, tokens, messages) and a
well-formed conversation (non-empty, known roles, the last message from the user)."""

from __future__ import annotations

from typing import Any, Final, get_args

from chorus.core.errors import NotSupported
from chorus.core.model import Model
from chorus.core.types import Request, Role
from chorus.policies.guardrails._checks import Check, Finding, Subject, note

__all__ = ["ShapeCheck", "SizeCheck", "approx_tokens", "shape_problem"]

ROLES: Final = frozenset(get_args(Role))


def approx_tokens(text: str) -> int:
    """About four characters a token: the estimate when the model has no tokenizer."""
    return (len(text) + 3) // 4


class SizeCheck(Check):
    """Refuses a prompt over ``max_chars`` characters, ``max_tokens`` tokens (the inner
    model's count where it has one, else ~4 characters a token) or ``max_messages``."""

    def __init__(self, name: str = "size", *, max_chars: int | None = None,
                 max_tokens: int | None = None, max_messages: int | None = None,
                 **kw: Any) -> None:
        super().__init__(name, **kw)
        if max_chars is None and max_tokens is None and max_messages is None:
            raise ValueError("size needs max_chars, max_tokens or max_messages")
        self.max_chars, self.max_tokens, self.max_messages = max_chars, max_tokens, max_messages
        self._counter: Model | None = None

    def bind(self, inner: Model) -> None:
        self._counter = inner

    def _tokens(self, text: str) -> tuple[int, str]:
        if self._counter is not None:
            try:
                return self._counter.count_tokens(text), "tokenizer"
            except NotSupported:
                pass
        return approx_tokens(text), "approx"

    async def run(self, subject: Subject) -> Finding | None:
        texts = [subject] if isinstance(subject, str) else [m.content for m in subject.messages]
        chars = sum(len(t) for t in texts)
        note(chars=chars, messages=len(texts))
        if self.max_messages is not None and len(texts) > self.max_messages:
            return Finding(f"{len(texts)} messages, more than the limit of {self.max_messages}")
        if self.max_chars is not None and chars > self.max_chars:
            return Finding(f"{chars} characters, more than the limit of {self.max_chars}",
                           span=(self.max_chars, chars))
        if self.max_tokens is not None:
            # Skip counting when even one token per character fits.
            if chars > self.max_tokens:
                tokens, how = self._tokens("\n".join(texts))
                note(tokens=tokens, counted_by=how)
                if tokens > self.max_tokens:
                    return Finding(f"{tokens} tokens ({how}), more than the limit of "
                                   f"{self.max_tokens}")
        return None


def shape_problem(request: Request, *, last_from_user: bool = True) -> str | None:
    """What is wrong with the conversation's shape, or None."""
    if not request.messages:
        return "the request has no messages"
    for i, m in enumerate(request.messages):
        if m.role not in ROLES:
            return f"message {i} has the unknown role {m.role!r}"
    if last_from_user and request.messages[-1].role != "user":
        return f"the last message is from {request.messages[-1].role!r}, not the user"
    if not request.messages[-1].content.strip():
        return "the last message is empty"
    return None


class ShapeCheck(Check):
    """A well-formed conversation: messages, known roles, a non-empty last user turn."""

    def __init__(self, name: str = "shape", *, last_from_user: bool = True, **kw: Any) -> None:
        super().__init__(name, **kw)
        self.last_from_user = last_from_user

    async def run(self, subject: Subject) -> Finding | None:
        if isinstance(subject, str):
            return None if subject.strip() else Finding("the answer is empty")
        problem = shape_problem(subject, last_from_user=self.last_from_user)
        return Finding(problem) if problem else None
