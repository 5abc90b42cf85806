"""Stream rescue, without I/O: how a fallback continues an answer that broke mid-stream.

The next model gets the conversation and the partial answer: as an assistant prefix it
continues (a prefill) where the model accepts one, else followed by an instruction to
continue. Either way a model may start by repeating the end of what was already sent;
``Seam`` holds back the first characters of the continuation until it can tell, and drops
a repeated run of whole words, so the caller never sees text twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from chorus.core.model import Leaf, Model
from chorus.core.types import Message, Request

__all__ = ["CONTINUE", "Form", "Seam", "continuation", "prefills"]

Form = Literal["prefix", "instruction"]

#: What a model that cannot continue a prefix is asked after the partial answer.
CONTINUE = ("Your answer above was cut off. Continue it from exactly where it stops: do not "
            "repeat any of it and write nothing before the continuation (start with a space "
            "if the continuation starts a new word).")


def prefills(model: Model) -> bool:
    """Whether ``model`` (or the one leaf a chain of wrappers leads to) continues a last
    assistant message; unknown counts as no."""
    seen = 0
    while not isinstance(model, Leaf) and seen < 16:
        kids: Sequence[Model] = model.children()
        if len(kids) != 1:
            return False
        model, seen = kids[0], seen + 1
    return bool(getattr(model, "prefill", False))


def continuation(request: Request, sent: str, form: Form) -> Request:
    """``request`` extended so that the answer continues ``sent``. A prefix loses its
    trailing whitespace (Anthropic refuses one that ends in it); the seam puts it back."""
    if form == "prefix":
        tail: tuple[Message, ...] = (Message("assistant", sent.rstrip()),)
    else:
        tail = (Message("assistant", sent), Message("user", CONTINUE))
    return Request(request.messages + tail, request.params, request.metadata)


def _word_starts(text: str) -> list[int]:
    return [i for i in range(len(text))
            if not text[i].isspace() and (i == 0 or text[i - 1].isspace())]


class Seam:
    """Joins a continuation to the ``sent`` text it continues: ``feed`` each piece and
    pass on what it returns, then pass on ``flush()``. ``dropped`` counts the repeated
    characters left out."""

    def __init__(self, sent: str) -> None:
        self.sent = sent
        self._tails = [sent[i:].rstrip() for i in _word_starts(sent)]
        self._space = sent[-1:].isspace()
        self._held = ""
        self._open = False
        self.dropped = 0

    def feed(self, text: str) -> str:
        if self._open:
            return text
        self._held += text
        if self._may_repeat():
            return ""
        return self._release()

    def flush(self) -> str:
        return "" if self._open else self._release()

    def _head(self) -> str:
        return self._held.lstrip() if self._space or not self.sent else self._held

    def _may_repeat(self) -> bool:
        """Whether the held text could still grow into a repeat of a tail of ``sent``."""
        head = self._head()
        if not head:
            return True  # only whitespace so far
        return any(len(t) > len(head) and t.startswith(head) for t in self._tails)

    def _release(self) -> str:
        self._open = True
        head = self._head()
        repeat = 0
        for tail in self._tails:
            if len(tail) <= repeat or not head.startswith(tail):
                continue
            if len(head) == len(tail) or not head[len(tail)].isalnum():  # whole words
                repeat = len(tail)
        out = head[repeat:]
        if repeat and self._space:
            out = out.lstrip()
        self.dropped = len(self._held) - len(out)
        self._held = ""
        return out
