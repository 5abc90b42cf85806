"""The one contract: ``Model.complete(request) -> Completion``.

Leaves (providers), composites (patterns) and wrappers (policies) are all Models, so
they nest freely. Streaming and token counting are optional and raise a typed
``NotImplementedError`` naming the class when a Model does not have them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from typing import Any, ClassVar, Literal, Protocol, TypeVar

from chorus.core import context, instrument
from chorus.core.errors import (
    ChorusError,
    DeadlineExceeded,
    StreamingNotSupported,
    TokenCountingNotSupported,
)
from chorus.core.types import Completion, Request, Span, TextDelta, ToolCallDelta

__all__ = [
    "FAMILIES",
    "Family",
    "Leaf", "LeafCall", "LeafHook", "Model", "StreamEvent", "call", "deltas_of", "error_span",
    "run_sync", "stream_or_complete",
]

T = TypeVar("T")
Family = Literal["single", "sequential", "parallel", "hierarchical", "ensemble"]
#: The families, simplest first.
FAMILIES: tuple[Family, ...] = ("single", "sequential", "parallel", "hierarchical", "ensemble")
StreamEvent = TextDelta | ToolCallDelta | Completion


class Model(ABC):
    """Anything that turns a Request into a Completion."""

    #: The span kind this model records: "model" for leaves, the pattern or policy name.
    kind: ClassVar[str] = "model"
    #: Whether ``stream`` is implemented.
    can_stream: ClassVar[bool] = False
    #: How the model calls its children, for reports (``chorus bench`` groups and prefers
    #: simpler systems by it): one of ``FAMILIES``; None (a wrapper) takes its child's.
    family: ClassVar[Family | None] = None

    name: str

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    async def complete(self, request: Request) -> Completion:
        """Answer one request."""

    def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        """Yield ``TextDelta`` (and ``ToolCallDelta``) pieces, then the final
        ``Completion`` with usage."""
        raise StreamingNotSupported(type(self).__name__)

    def count_tokens(self, text: str) -> int:
        raise TokenCountingNotSupported(type(self).__name__)

    def children(self) -> Sequence[Model]:
        """The Models this one calls (empty for a leaf)."""
        return ()

    async def aclose(self) -> None:
        """Release what this model holds (connections); closes children too."""
        for child in self.children():
            await child.aclose()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class Leaf(Model):
    """A Model that answers by itself, calling no other Model: one real (or scripted)
    model. Every provider is one; leaf calls are what a budget charges."""

    kind: ClassVar[str] = "model"
    family: ClassVar[Family | None] = "single"


#: How a hook makes the leaf call it wraps.
LeafCall = Callable[["Model", Request], Awaitable[Completion]]


class LeafHook(Protocol):
    """What ``call`` and ``stream_or_complete`` send every leaf call through while one is
    in the context (``scope(leaf_hook=...)``): a budget reserves before the call and
    settles after it."""

    def around(self, model: Model, request: Request, call_leaf: LeafCall
               ) -> Awaitable[Completion]: ...

    def around_stream(self, model: Model, request: Request) -> AsyncIterator[StreamEvent]: ...


async def call(model: Model, request: Request) -> Completion:
    """Call ``model`` within the current deadline (the way composites call children).

    A leaf call made while a ``LeafHook`` is in the context (a budget's) goes through the
    hook's ``around``; without one this costs one attribute read. With telemetry on
    (``core.instrument``), the call runs inside its own span.
    """
    watch = instrument._active
    if watch is not None:
        return await watch.call(model, request, _hooked)
    hook = context.current().leaf_hook
    if hook is not None and isinstance(model, Leaf):
        return await hook.around(model, request, _call)
    return await _call(model, request)


async def _hooked(model: Model, request: Request) -> Completion:
    # What ``call`` does below its span (kept inline there: the path without telemetry).
    hook = context.current().leaf_hook
    if hook is not None and isinstance(model, Leaf):
        return await hook.around(model, request, _call)
    return await _call(model, request)


async def _call(model: Model, request: Request) -> Completion:
    left = context.remaining()
    if left is None:
        return await model.complete(request)
    if left <= 0:
        raise DeadlineExceeded(f"no time left to call {model.name!r}")
    task = asyncio.current_task()
    assert task is not None
    # What ``asyncio.timeout`` does, with one timer instead of its context manager (whose
    # enter and exit cost about a tenth of the gateway's own work on a request).
    base = task.cancelling()
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    timer = task.get_loop().call_later(left, expire)
    try:
        answer = await model.complete(request)
    except asyncio.CancelledError:
        if expired and task.uncancel() <= base:
            raise DeadlineExceeded(
                f"{model.name!r} did not answer before the request's deadline") from None
        raise
    finally:
        timer.cancel()
    if expired:  # it fired as the answer came: the answer stands, as with asyncio.timeout
        task.uncancel()
    return answer


async def stream_or_complete(model: Model, request: Request) -> AsyncGenerator[StreamEvent, None]:
    """Stream when the model can, else yield its whole answer as one piece.

    As in ``call``, a leaf's stream under a ``LeafHook`` goes through the hook (a
    budget's ``around_stream`` reserves before the first piece and settles at the end). Closing
    this stream closes the model's at once, so a consumer that stops early frees what
    the stream holds (a connection, a budget reservation) without waiting for the GC.
    """
    if model.can_stream:
        hook = context.current().leaf_hook
        if hook is not None and isinstance(model, Leaf):
            events = hook.around_stream(model, request)
        else:
            events = model.stream(request)
        watch = instrument._active
        if watch is not None:
            events = watch.stream(model, request, events)
        try:
            async for event in events:
                yield event
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()
        return
    completion = await call(model, request)
    for piece in deltas_of(completion):
        yield piece
    yield completion


def deltas_of(completion: Completion) -> list[TextDelta | ToolCallDelta]:
    """A whole answer as stream pieces: its text, then each tool call in one piece."""
    out: list[TextDelta | ToolCallDelta] = []
    if completion.text or not completion.tool_calls:
        out.append(TextDelta(completion.text, completion.model,
                             completion.logprobs if completion.text else None))
    out.extend(ToolCallDelta(i, c.id, c.name, c.arguments)
               for i, c in enumerate(completion.tool_calls))
    return out


def error_span(model: Model, error: BaseException, started: float) -> Span:
    """The span of a child call that failed, so the trace keeps it."""
    if isinstance(error, ChorusError) and error.trace is not None:
        return error.trace
    msg = str(error) if isinstance(error, ChorusError) else f"{type(error).__name__}: {error}"
    if isinstance(error, asyncio.CancelledError | TimeoutError):
        msg = "cancelled" if isinstance(error, asyncio.CancelledError) else "timed out"
    return Span(
        kind=model.kind,
        name=model.name,
        latency_s=time.perf_counter() - started,
        error=msg,
    )


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from sync code, also when an event loop is already running.

    Under a running loop (a notebook, a sync callback inside async code, a sync function
    model calling run_sync again) the coroutine runs on a loop of its own in a new thread,
    so nested calls at any depth never wait on each other. The calling loop is blocked
    meanwhile: the coroutine must not wait on anything that loop would have to do.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="chorus-sync") as pool:
        return pool.submit(asyncio.run, coro).result()
