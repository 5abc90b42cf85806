"""A composite and a wrapper written the way a user outside the package writes them, from
public names only (``chorus.core``, ``chorus.providers``, ``chorus.patterns``)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence

import pytest

from chorus.core import (
    AllModelsFailed,
    ChorusError,
    Completion,
    Model,
    Request,
    ServerError,
    StreamEvent,
    TextDelta,
    Wrapper,
    call,
    combine,
    error_span,
    failed_span,
    raise_if_sent,
    stream_or_complete,
    with_trace,
)
from chorus.providers import ScriptedModel


class FirstNonEmpty(Model):
    """Asks its models in order; the first non-empty answer wins."""

    kind = "first_non_empty"

    def __init__(self, name: str, models: Sequence[Model]) -> None:
        super().__init__(name)
        self.models = list(models)

    def children(self) -> Sequence[Model]:
        return self.models

    async def complete(self, request: Request) -> Completion:
        started = time.perf_counter()
        parts: list[Completion] = []
        failed = []
        errors: dict[str, BaseException] = {}
        for m in self.models:
            t0 = time.perf_counter()
            try:
                out = await call(m, request)
            except ChorusError as exc:
                failed.append(error_span(m, exc, t0))
                errors[m.name] = exc
                continue
            parts.append(out)
            if out.text.strip():
                return combine(self, out.text, started=started, parts=parts, winner=out,
                               failed=failed, attributes={"tried": len(parts) + len(failed)})
        err = AllModelsFailed(self.name, errors)
        raise with_trace(err, failed_span(self, err, [*(p.trace for p in parts if p.trace),
                                                      *failed]))


class Shout(Wrapper):
    """Upper-cases its inner model's answer."""

    kind = "shout"

    async def complete(self, request: Request) -> Completion:
        out = await call(self.inner, request)
        return combine(self, out.text.upper(), started=time.perf_counter(), parts=[out],
                       winner=out)

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        async for event in stream_or_complete(self.inner, request):
            yield TextDelta(event.text.upper()) if isinstance(event, TextDelta) else event


async def test_a_composite_from_public_names_answers_and_costs_every_call() -> None:
    empty = ScriptedModel("empty", replies=[""], price=None)
    broken = ScriptedModel("broken", replies=[ServerError("down")])
    good = ScriptedModel("good", replies=["forty two"])
    out = await FirstNonEmpty("first", [empty, broken, good]).complete(Request.of("q"))
    assert out.text == "forty two" and out.model == "good"
    assert out.trace is not None and out.trace.kind == "first_non_empty"
    assert [c.name for c in out.trace.children] == ["empty", "good", "broken"]
    assert [c.error for c in out.trace.children] == [None, None, "down"]
    assert out.trace.attributes == {"tried": 3}
    assert out.usage.output_tokens == 1 + 2  # the empty answer counts one token


async def test_its_failure_keeps_its_trace_for_the_parent() -> None:
    first = FirstNonEmpty("first", [ScriptedModel("a", replies=[""]),
                                    ScriptedModel("b", replies=[ServerError("down")])])
    backup = ScriptedModel("backup", replies=["ok"])
    out = await FirstNonEmpty("outer", [first, backup]).complete(Request.of("q"))
    assert out.text == "ok"
    assert out.trace is not None
    kept = next(c for c in out.trace.children if c.name == "first")
    # The parent's trace holds the failed composite's own span, with both calls in it.
    assert kept.kind == "first_non_empty" and kept.error is not None
    assert [c.name for c in kept.children] == ["a", "b"]
    assert kept.children[1].error == "down"


async def test_with_trace_is_what_error_span_reads() -> None:
    model = ScriptedModel("m")
    plain = ServerError("down")
    assert plain.trace is None
    assert error_span(model, plain, time.perf_counter()).name == "m"
    traced = with_trace(ServerError("down"), failed_span(model, plain, []))
    assert error_span(model, traced, time.perf_counter()) is traced.trace


async def test_a_wrapper_has_one_child_and_wraps_calls_and_streams() -> None:
    shout = Shout("shout", ScriptedModel("inner", replies=["hi there", "hi there"]))
    assert shout.children() == (shout.inner,) and shout.can_stream
    out = await shout.complete(Request.of("q"))
    assert out.text == "HI THERE" and out.trace is not None
    assert out.trace.kind == "shout" and out.trace.children[0].name == "inner"
    pieces = [e async for e in shout.stream(Request.of("q"))]
    assert "".join(p.text for p in pieces if isinstance(p, TextDelta)) == "HI THERE"
    assert isinstance(pieces[-1], Completion)


async def test_a_bare_wrapper_passes_through() -> None:
    inner = ScriptedModel("inner", replies=["same", "same"])
    bare = Wrapper("bare", inner)
    assert (await bare.complete(Request.of("q"))).text == "same"
    events = [e async for e in bare.stream(Request.of("q"))]
    assert isinstance(events[-1], Completion) and events[-1].text == "same"


def test_a_wrapper_needs_its_inner_model() -> None:
    with pytest.raises(TypeError):
        Wrapper("bare")  # type: ignore[call-arg]


def test_raise_if_sent_lets_a_composite_go_on_only_before_the_first_piece() -> None:
    error = ServerError("down")
    assert raise_if_sent(error, False, note="never added") is None
    assert not getattr(error, "__notes__", None)
    with pytest.raises(ServerError) as info:
        raise_if_sent(error, True, note="the stream broke after its first piece")
    assert info.value is error
    assert info.value.__notes__ == ["the stream broke after its first piece"]
    with pytest.raises(ServerError) as bare:
        raise_if_sent(ServerError("again"), True)
    assert not getattr(bare.value, "__notes__", None)
