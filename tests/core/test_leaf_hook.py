"""The typed leaf hook in the context: ``call`` and ``stream_or_complete`` send leaf
calls (and only those) through it, the way a budget charges every leaf below it."""

from __future__ import annotations

from collections.abc import AsyncIterator

from chorus.core import (
    Completion,
    Leaf,
    Model,
    Request,
    StreamEvent,
    Wrapper,
    call,
    current,
    scope,
    stream_or_complete,
)
from chorus.core.model import LeafCall
from chorus.patterns import Fallback
from chorus.providers import ScriptedModel


class Recorder:
    """A LeafHook that notes each leaf call it wraps."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def around(self, model: Model, request: Request, call_leaf: LeafCall) -> Completion:
        self.seen.append(model.name)
        return await call_leaf(model, request)

    async def around_stream(self, model: Model, request: Request
                            ) -> AsyncIterator[StreamEvent]:
        self.seen.append(f"stream {model.name}")
        async for event in model.stream(request):
            yield event


class Echo(Leaf):
    """A leaf written from scratch (not a provider)."""

    async def complete(self, request: Request) -> Completion:
        return Completion(request.prompt, self.name)


async def test_leaf_calls_go_through_the_hook_and_composite_calls_do_not() -> None:
    hook = Recorder()
    a = ScriptedModel("a", default="x", cycle=True)
    system = Fallback("fb", [Wrapper("w", a), Echo("echo")])
    with scope(leaf_hook=hook):
        assert current().leaf_hook is hook
        assert (await call(system, Request.of("q"))).text == "x"
        assert (await call(Echo("echo"), Request.of("q"))).text == "q"
        events = [e async for e in stream_or_complete(Wrapper("w", a), Request.of("q"))]
        assert isinstance(events[-1], Completion)
        with scope(deadline_s=5):
            assert current().leaf_hook is hook  # a child scope keeps its parent's hook
    assert hook.seen == ["a", "echo", "stream a"]
    assert current().leaf_hook is None
    await call(a, Request.of("q"))
    assert len(hook.seen) == 3


async def test_an_inner_hook_replaces_the_outer_one_below_it() -> None:
    outer, inner = Recorder(), Recorder()
    with scope(leaf_hook=outer):
        with scope(leaf_hook=inner):
            await call(Echo("e"), Request.of("q"))
        await call(Echo("f"), Request.of("q"))
    assert (outer.seen, inner.seen) == (["f"], ["e"])


def test_providers_are_leaves_and_wrappers_are_not() -> None:
    assert isinstance(ScriptedModel("s"), Leaf)
    assert not isinstance(Wrapper("w", ScriptedModel("s")), Leaf)
