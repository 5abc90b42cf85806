"""Stream rescue: the seam between a broken stream and its continuation, the continuation
request, and the fallback's deadline shares (no I/O)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from chorus.core import context
from chorus.core.errors import AllModelsFailed, StreamCut
from chorus.core.model import Model, StreamEvent
from chorus.core.types import Completion, Request, TextDelta, Usage
from chorus.patterns._rescue import CONTINUE, Seam, continuation, prefills
from chorus.patterns.fallback import Fallback, MemoryCooldowns, share
from chorus.policies.retry import Retry
from chorus.providers.scripted import ScriptedModel


def joined(sent: str, pieces: list[str]) -> tuple[str, int]:
    seam = Seam(sent)
    out = "".join(seam.feed(p) for p in pieces) + seam.flush()
    return sent + out, seam.dropped


@pytest.mark.parametrize(("sent", "pieces", "whole"), [
    ("Paris is the ", ["capital ", "of France."], "Paris is the capital of France."),
    ("Paris is the ", [" capital", " of France."], "Paris is the capital of France."),
    ("Paris is the", [" capital of France."], "Paris is the capital of France."),
    # A model that starts over, whole or from the last words, repeats nothing.
    ("Paris is the ", ["Par", "is is the capital", " of France."],
     "Paris is the capital of France."),
    ("Paris is the ", ["the capital of France."], "Paris is the capital of France."),
    # "is" as the start of "island" is no repeat: only whole words are.
    ("Paris is ", ["island"], "Paris is island"),
    ("a b a b ", ["a b a b c"], "a b a b c"),
])
def test_a_seam_never_repeats_text(sent: str, pieces: list[str], whole: str) -> None:
    assert joined(sent, pieces)[0] == whole


def test_a_seam_releases_at_once_when_nothing_can_repeat() -> None:
    seam = Seam("Paris is the ")
    assert seam.feed("capital") == "capital" and seam.feed(" of") == " of"


def test_the_continuation_request_per_form() -> None:
    r = Request.of("Capital of France?", system="Be brief.")
    prefix = continuation(r, "Paris is the ", "prefix")
    assert [(m.role, m.content) for m in prefix.messages[-2:]] == [
        ("user", "Capital of France?"), ("assistant", "Paris is the")]
    ask = continuation(r, "Paris is the ", "instruction")
    assert [(m.role, m.content) for m in ask.messages[-2:]] == [
        ("assistant", "Paris is the "), ("user", CONTINUE)]
    leaf = ScriptedModel("s", default="x", prefill=True)
    assert prefills(Retry("r", leaf)) and not prefills(ScriptedModel("t", default="x"))


def test_each_attempt_gets_a_share_of_the_time_left() -> None:
    assert share(45.0, 2, None) == 22.5
    assert share(45.0, 1, 30.0) == 30.0
    assert share(None, 3, None) is None and share(None, 3, 5.0) == 5.0


class Breaks(Model):
    """Streams ``sent`` and then breaks (a cut), like a dropped connection."""

    can_stream = True

    def __init__(self, name: str, sent: list[str]) -> None:
        super().__init__(name)
        self.sent = sent

    async def complete(self, request: Request) -> Completion:
        raise StreamCut("cut", model=self.name)

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        for piece in self.sent:
            yield TextDelta(piece, self.name)
        error = StreamCut("cut", model=self.name)
        error.partial = Completion("".join(self.sent), self.name, Usage(3, 3), 0.5)
        raise error


class Silent(Model):
    can_stream = True

    async def complete(self, request: Request) -> Completion:
        await asyncio.sleep(60)
        raise AssertionError("unreachable")


async def test_the_last_child_gets_its_turn_before_the_deadline() -> None:
    fb = Fallback("fb", [Silent("silent"), ScriptedModel("ok", default="fine")],
                  cooldowns=MemoryCooldowns())
    started = time.monotonic()
    with context.scope(deadline_s=0.4):
        out = await fb.complete(Request.of("q"))
    assert out.text == "fine" and out.model == "ok"
    assert 0.15 < time.monotonic() - started < 0.4  # the silent one had half the time


async def test_rescue_continues_and_bills_both_parts() -> None:
    rest = ScriptedModel("rest", default="capital of France.", usage=Usage(5, 4))
    fb = Fallback("fb", [Breaks("cut", ["Paris ", "is ", "the "]), rest],
                  cooldowns=MemoryCooldowns())
    events = [e async for e in fb.stream(Request.of("Capital of France?"))]
    final = events[-1]
    assert isinstance(final, Completion)
    assert final.text == "Paris is the capital of France." and final.model == "rest"
    assert [e.model for e in events[:-1]] == ["cut"] * 3 + ["rest"] * 3
    assert final.usage == Usage(8, 7) and final.cost_usd == pytest.approx(0.5)
    assert rest.calls[0].messages[-1].content == CONTINUE


async def test_without_rescue_a_broken_stream_is_an_error() -> None:
    fb = Fallback("fb", [Breaks("cut", ["Paris "]), ScriptedModel("ok", default="x")],
                  rescue=False, cooldowns=MemoryCooldowns())
    got: list[StreamEvent] = []
    with pytest.raises(StreamCut, match="rescue is off"):
        async for e in fb.stream(Request.of("q")):
            got.append(e)
    assert got == [TextDelta("Paris ", "cut")]


async def test_a_stream_that_fails_before_its_first_piece_falls_back() -> None:
    fb = Fallback("fb", [ScriptedModel("bad", fail_with="server_error", fail_times=-1),
                         ScriptedModel("ok", default="all good")],
                  cooldowns=MemoryCooldowns())
    events = [e async for e in fb.stream(Request.of("q"))]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "all good"
    with pytest.raises(AllModelsFailed):
        bad = ScriptedModel("bad2", fail_with="server_error", fail_times=-1)
        _ = [e async for e in Fallback("f2", [bad], cooldowns=MemoryCooldowns()).stream(
            Request.of("q"))]
