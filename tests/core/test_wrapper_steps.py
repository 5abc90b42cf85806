"""The steps of ``chorus.core.Wrapper``, through wrappers written from public names only
the way a user outside the package writes one: ``complete`` and ``stream`` are the
base's, the wrapper states only ``enter``, ``own_answer``, ``inner_scope``, ``failed``,
``abandoned`` and ``answered``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from chorus.core import (
    ChorusError,
    Completion,
    Model,
    Request,
    ServerError,
    StreamEvent,
    TextDelta,
    Wrapper,
    combine,
    current,
)
from chorus.providers import ScriptedModel


class Memo(Wrapper[str]):
    """Answers a prompt it has answered before without calling its inner model."""

    kind = "memo"

    def __init__(self, name: str, inner: Model) -> None:
        super().__init__(name, inner)
        self.kept: dict[str, Completion] = {}

    async def enter(self, request: Request, started: float) -> str:
        return request.prompt

    def own_answer(self, state: str, started: float) -> Completion | None:
        return self.kept.get(state)

    async def answered(self, state: str, answer: Completion, started: float) -> Completion:
        self.kept[state] = answer
        return answer


@dataclass
class Log:
    errors: list[tuple[str, bool]] = field(default_factory=list)
    abandoned: bool = False


class TryTwice(Wrapper[Log]):
    """Calls its inner model again once after a failure, unless a piece was sent; runs
    it with ``tag`` in the context; reports the failures in its span."""

    kind = "try_twice"

    def __init__(self, name: str, inner: Model) -> None:
        super().__init__(name, inner)
        self.logs: list[Log] = []

    async def enter(self, request: Request, started: float) -> Log:
        if request.prompt == "refuse":
            raise ServerError("refused before the call", model=self.name)
        self.logs.append(Log())
        return self.logs[-1]

    def inner_scope(self, state: Log) -> dict[str, Any]:
        return {"tag": "inside"}

    async def failed(self, state: Log, error: ChorusError, started: float,
                     inner_started: float, sent: bool) -> bool:
        assert started <= inner_started <= time.perf_counter()
        state.errors.append((str(error), sent))
        return len(state.errors) < 2 and not sent

    async def abandoned(self, state: Log) -> None:
        state.abandoned = True

    async def answered(self, state: Log, answer: Completion, started: float) -> Completion:
        return combine(self, answer.text, started=started, parts=[answer], winner=answer,
                       attributes={"failures": len(state.errors)})


class Flaky(Model):
    """Fails each call as scripted ("before": before any piece, "after": after one),
    else answers "one two three"; records the context's ``tag`` it saw."""

    kind = "flaky"
    can_stream = True

    def __init__(self, plan: list[str]) -> None:
        super().__init__("flaky")
        self.plan = plan
        self.tags: list[Any] = []

    async def complete(self, request: Request) -> Completion:
        self.tags.append(current().values.get("tag"))
        if self.plan and self.plan.pop(0) != "ok":
            raise ServerError("down", model=self.name)
        return Completion("one two three", self.name)

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        self.tags.append(current().values.get("tag"))
        step = self.plan.pop(0) if self.plan else "ok"
        if step == "before":
            raise ServerError("down before", model=self.name)
        yield TextDelta("one", self.name)
        self.tags.append(current().values.get("tag"))
        if step == "after":
            raise ServerError("down after", model=self.name)
        yield TextDelta(" two three", self.name)
        yield Completion("one two three", self.name)


async def _events(model: Model, prompt: str = "q") -> list[StreamEvent]:
    return [e async for e in model.stream(Request.of(prompt))]


async def test_an_own_answer_skips_the_inner_model_and_streams_in_word_pieces() -> None:
    inner = ScriptedModel("inner", replies=["hello there world"])
    memo = Memo("memo", inner)
    first = await memo.complete(Request.of("q"))
    again = await memo.complete(Request.of("q"))
    assert again is first and len(inner.calls) == 1
    events = await _events(memo)
    assert [e.text for e in events[:-1] if isinstance(e, TextDelta)] == [
        "hello", " there", " world"]
    assert events[-1] is first and len(inner.calls) == 1


async def test_a_failure_is_retried_when_failed_says_so_in_complete_and_stream() -> None:
    flaky = Flaky(["fail", "ok"])
    w = TryTwice("w", flaky)
    out = await w.complete(Request.of("q"))
    assert out.text == "one two three" and out.trace is not None
    assert out.trace.attributes == {"failures": 1}
    assert w.logs[-1].errors == [("model 'flaky': down", False)]
    # The inner call runs with the wrapper's context values; the caller's stay clean.
    assert flaky.tags == ["inside", "inside"] and current().values.get("tag") is None

    flaky = Flaky(["before", "ok"])
    events = await _events(TryTwice("w", flaky))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "one two three"
    final = events[-1]
    assert isinstance(final, Completion) and final.trace is not None
    assert final.trace.attributes == {"failures": 1}
    assert flaky.tags == ["inside", "inside", "inside"]


async def test_a_stream_that_sent_a_piece_is_not_called_again() -> None:
    w = TryTwice("w", Flaky(["after", "ok"]))
    got: list[StreamEvent] = []
    with pytest.raises(ServerError, match="down after"):
        async for e in w.stream(Request.of("q")):
            got.append(e)
    assert [e.text for e in got if isinstance(e, TextDelta)] == ["one"]
    assert w.logs[-1].errors == [("model 'flaky': down after", True)] and not w.logs[-1].abandoned


async def test_giving_up_and_refusing_raise_the_error() -> None:
    w = TryTwice("w", Flaky(["fail", "fail", "ok"]))
    with pytest.raises(ServerError, match="down"):
        await w.complete(Request.of("q"))
    assert len(w.logs[-1].errors) == 2
    with pytest.raises(ServerError, match="refused before the call"):
        await w.complete(Request.of("refuse"))
    with pytest.raises(ServerError, match="refused before the call"):
        await _events(w, "refuse")


async def test_closing_the_stream_early_abandons_the_call() -> None:
    w = TryTwice("w", Flaky([]))
    stream = w.stream(Request.of("q"))
    first = await anext(stream)
    assert isinstance(first, TextDelta) and not w.logs[-1].abandoned
    await stream.aclose()  # type: ignore[attr-defined]
    assert w.logs[-1].abandoned and not w.logs[-1].errors
