"""Streaming: buffer mode holds the answer back; window mode releases checked text and
ends with an explicit error at a violation."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from chorus.core.errors import GuardrailViolation
from chorus.core.model import StreamEvent
from chorus.core.types import Completion, Request, TextDelta
from chorus.policies.guardrails import FilterCheck, Guardrails, PIICheck, RefusalCheck
from chorus.providers.scripted import ScriptedModel

CLEAN = " ".join(f"word{i}" for i in range(60))  # ~ 400 characters


async def collect(g: Guardrails, prompt: str = "q") -> tuple[list[str], Completion | None,
                                                             Exception | None]:
    pieces: list[str] = []
    final = None
    try:
        async for ev in g.stream(Request.of(prompt)):
            if isinstance(ev, TextDelta):
                pieces.append(ev.text)
            else:
                final = ev
    except GuardrailViolation as exc:
        return pieces, final, exc
    return pieces, final, None


def banned() -> FilterCheck:
    return FilterCheck(words=["forbidden"], stage="output")


async def test_buffer_mode_sends_nothing_before_a_violation() -> None:
    g = Guardrails("g", ScriptedModel("m", default=CLEAN + " forbidden tail"),
                   output=[banned()])
    pieces, final, err = await collect(g)
    assert pieces == [] and final is None and err is not None and err.check == "filter"


async def test_buffer_mode_sends_a_passing_answer() -> None:
    g = Guardrails("g", ScriptedModel("m", default=CLEAN), output=[banned()])
    pieces, final, err = await collect(g)
    assert err is None and "".join(pieces) == CLEAN and final is not None
    assert final.text == CLEAN


async def test_window_mode_releases_checked_text_then_raises_mid_stream() -> None:
    text = CLEAN + " and then a forbidden word " + CLEAN
    g = Guardrails("g", ScriptedModel("m", default=text), output=[banned()],
                   stream_mode="window", window_chars=64, overlap_chars=16)
    pieces, final, err = await collect(g)
    sent = "".join(pieces)
    assert err is not None and err.stage == "output" and final is None
    assert sent and text.startswith(sent)  # what was sent is a prefix of the answer
    assert "forbidden" not in sent
    assert len(sent) >= len(CLEAN) - 64 - 16  # the clean part went out before the error
    assert err.trace.attributes["windows"] >= 4  # type: ignore[attr-defined]
    assert err.trace.attributes["sent_chars"] == len(sent)  # type: ignore[attr-defined]


class Chunked(ScriptedModel):
    """Streams its answer in pieces of ``size`` characters, cutting through words."""

    def __init__(self, text: str, size: int) -> None:
        super().__init__("chunked", default=text)
        self.size = size

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        answer = await self.complete(request)
        for i in range(0, len(answer.text), self.size):
            yield TextDelta(answer.text[i:i + self.size])
        yield answer


async def test_window_mode_holds_back_a_match_across_a_window_edge() -> None:
    # "forbidden" straddles the 64-character edge: the overlap keeps it from leaking.
    text = "x" * 60 + " forbidden " + "y" * 200
    g = Guardrails("g", Chunked(text, 4), output=[banned()],
                   stream_mode="window", window_chars=64, overlap_chars=16)
    pieces, _, err = await collect(g)
    assert err is not None and "for" not in "".join(pieces)
    # Without an overlap the word is cut in two and neither window sees it.
    g0 = Guardrails("g", Chunked(text, 4), output=[banned()],
                    stream_mode="window", window_chars=64, overlap_chars=0)
    pieces, _, err = await collect(g0)
    assert err is None and "".join(pieces) == text


async def test_window_mode_passes_a_clean_answer_and_restores_placeholders() -> None:
    inner = ScriptedModel("m", default=CLEAN + " reply to <EMAIL_1> please " + CLEAN)
    g = Guardrails("g", inner, input=[PIICheck(action="fix", restore=True)],
                   output=[banned()], stream_mode="window", window_chars=40, overlap_chars=16)
    pieces, final, err = await collect(g, "I am ann@example.org")
    assert err is None and final is not None
    assert "".join(pieces) == final.text
    assert "reply to ann@example.org please" in final.text
    assert "ann@example.org" not in inner.calls[0].prompt


async def test_window_mode_runs_whole_answer_checks_at_the_end() -> None:
    g = Guardrails("g", ScriptedModel("m", default="I cannot help with that. " + CLEAN),
                   output=[RefusalCheck(action="block")], stream_mode="window",
                   window_chars=64, overlap_chars=8)
    pieces, final, err = await collect(g)
    assert err is not None and err.check == "refusal" and final is None
    assert "".join(pieces) == "I cannot help with that. " + CLEAN  # sent, then the error


@pytest.mark.parametrize("mode", ["buffer", "window"])
async def test_input_violation_raises_before_any_text(mode: str) -> None:
    inner = ScriptedModel("m", default="x")
    g = Guardrails("g", inner, input=[PIICheck()], stream_mode=mode)  # type: ignore[arg-type]
    pieces, _, err = await collect(g, "ssn 078-05-1120")
    assert pieces == [] and err is not None and err.stage == "input" and inner.calls == []
