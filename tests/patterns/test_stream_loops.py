"""The stream loops of the composites (router, cascade, fallback): a child's pieces pass
on as they come, a stream that ends without its final Completion is malformed, and a
consumer that stops early closes the child's stream."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from chorus.core.errors import MalformedResponse, ServerError, StepFailed
from chorus.core.model import Model, StreamEvent
from chorus.core.types import Completion, Request, TextDelta
from chorus.patterns.cascade import Cascade, FunctionCheck, LogprobCheck, Stage
from chorus.patterns.router import Router
from chorus.providers.scripted import ScriptedModel
from chorus.routing import KeywordClassifier, Rule


class Truncated(Model):
    """Streams ``pieces`` and ends without a final Completion; notes when it is closed."""

    can_stream = True

    def __init__(self, name: str, pieces: list[str], *, final: bool = False) -> None:
        super().__init__(name)
        self.pieces, self.final, self.closed = pieces, final, False

    async def complete(self, request: Request) -> Completion:
        return Completion("".join(self.pieces), self.name)

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        try:
            for piece in self.pieces:
                yield TextDelta(piece, self.name)
            if self.final:
                yield Completion("".join(self.pieces), self.name)
        finally:
            self.closed = True


def router(model: Model) -> Router:
    clf = KeywordClassifier([Rule("math", keywords=["sum"])])
    return Router("r", clf, {"math": model, "general": model}, default="general")


async def test_a_router_passes_pieces_then_fails_on_a_stream_without_its_end() -> None:
    cut = Truncated("cut", ["a ", "b"])
    seen: list[str] = []
    with pytest.raises(StepFailed) as info:
        async for event in router(cut).stream(Request.of("q")):
            assert isinstance(event, TextDelta)
            seen.append(event.text)
    assert seen == ["a ", "b"] and cut.closed
    assert isinstance(info.value.__cause__, MalformedResponse)
    assert "ended without a final completion" in str(info.value.__cause__)
    trace = info.value.trace
    assert trace is not None and trace.kind == "router"
    assert [c.name for c in trace.children][-1] == "cut" and trace.children[-1].error


async def test_a_router_closes_the_chosen_stream_when_the_consumer_stops() -> None:
    slow = Truncated("slow", ["a ", "b ", "c"], final=True)
    events = router(slow).stream(Request.of("q"))
    first = await anext(events)  # type: ignore[call-overload]
    assert isinstance(first, TextDelta) and first.text == "a "
    assert not slow.closed
    await events.aclose()  # type: ignore[attr-defined]
    assert slow.closed


async def test_a_router_streams_the_whole_answer_and_its_completion() -> None:
    whole = Truncated("whole", ["a ", "b"], final=True)
    events = [e async for e in router(whole).stream(Request.of("q"))]
    assert [e.text for e in events[:-1]] == ["a ", "b"]
    last = events[-1]
    assert isinstance(last, Completion) and last.text == "a b" and last.trace is not None
    assert last.trace.kind == "router" and whole.closed


async def test_a_cascade_s_last_stage_without_its_end_is_malformed() -> None:
    cut = Truncated("cut", ["x ", "y"])
    first = ScriptedModel("first", replies=[ServerError("down")])
    cascade = Cascade("c", [Stage(first, LogprobCheck()), Stage(cut)])
    seen: list[str] = []
    with pytest.raises(MalformedResponse, match="ended without a final completion"):
        async for event in cascade.stream(Request.of("q")):
            assert isinstance(event, TextDelta)
            seen.append(event.text)
    assert seen == ["x ", "y"] and cut.closed


async def test_a_cascade_closes_the_last_stage_s_stream_when_the_consumer_stops() -> None:
    slow = Truncated("slow", ["x ", "y ", "z"], final=True)
    events = Cascade("c", [Stage(slow)]).stream(Request.of("q"))
    first = await anext(events)  # type: ignore[call-overload]
    assert isinstance(first, TextDelta) and not slow.closed
    await events.aclose()  # type: ignore[attr-defined]
    assert slow.closed


class BreaksAfter(Model):
    """Streams ``pieces`` and then fails (a server error), or fails before any piece."""

    can_stream = True

    def __init__(self, name: str, pieces: list[str]) -> None:
        super().__init__(name)
        self.pieces = pieces

    async def complete(self, request: Request) -> Completion:
        raise ServerError("down", model=self.name)

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        for piece in self.pieces:
            yield TextDelta(piece, self.name)
        raise ServerError("down", model=self.name)


def doubted_then(last: Model) -> Cascade:
    """A cascade whose first stage answers but is escalated, then ``last``."""
    first = ScriptedModel("first", default="early answer")
    return Cascade("c", [Stage(first, FunctionCheck(lambda r, c: False)), Stage(last)])


async def test_a_cascade_falls_back_to_an_earlier_answer_only_before_the_first_piece() -> None:
    events = [e async for e in doubted_then(BreaksAfter("last", [])).stream(Request.of("q"))]
    last = events[-1]
    assert isinstance(last, Completion) and last.text == "early answer"
    assert "".join(e.text for e in events[:-1] if isinstance(e, TextDelta)) == "early answer"

    seen: list[str] = []
    with pytest.raises(ServerError, match="down"):
        async for event in doubted_then(BreaksAfter("last", ["half "])).stream(Request.of("q")):
            assert isinstance(event, TextDelta)
            seen.append(event.text)
    assert seen == ["half "]  # the earlier answer is not sent after a piece of this one
