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
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine, Sequence
from typing import Any, ClassVar, TypeVar

from chorus.core import context, instrument
from chorus.core.errors import (
    ChorusError,
    DeadlineExceeded,
    StreamingNotSupported,
    TokenCountingNotSupported,
)
from chorus.core.types import Completion, Request, Span, TextDelta, ToolCallDelta

__all__ = [
    "Model", "StreamEvent", "call", "complete", "deltas_of", "error_span", "run_sync",
    "stream_or_complete",
]

T = TypeVar("T")
StreamEvent = TextDelta | ToolCallDelta | Completion


class Model(ABC):
    """Anything that turns a Request into a Completion."""

    #: The span kind this model records: "model" for leaves, the pattern or policy name.
    kind: ClassVar[str] = "model"
    #: Whether ``stream`` is implemented.
    can_stream: ClassVar[bool] = False

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


async def call(model: Model, request: Request) -> Completion:
    """Call ``model`` within the current deadline (the way composites call children).

    A leaf call (``kind == "model"``) made under a budget (the context value ``"budget"``,
    set by ``policies.budget.Budget``) goes through the budget's ``around``, which reserves
    before the call and settles after it; without a budget this costs one dict lookup.
    With telemetry on (``core.instrument``), the call runs inside its own span.
    """
    watch = instrument._active
    if watch is not None:
        return await watch.call(model, request, _guarded)
    guard = context.current().values.get("budget")
    if guard is not None and model.kind == "model":
        return await guard.around(model, request, _call)  # type: ignore[no-any-return]
    return await _call(model, request)


async def _guarded(model: Model, request: Request) -> Completion:
    # What ``call`` does below its span (kept inline there: the path without telemetry).
    guard = context.current().values.get("budget")
    if guard is not None and model.kind == "model":
        return await guard.around(model, request, _call)  # type: ignore[no-any-return]
    return await _call(model, request)


async def _complete(model: Model, request: Request) -> Completion:
    return await model.complete(request)


def complete(model: Model, request: Request) -> Coroutine[Any, Any, Completion]:
    """``model.complete(request)``, inside a span when telemetry is on: for the top of a
    request that keeps its own deadline (the gateway)."""
    watch = instrument._active
    if watch is None:
        return model.complete(request)
    return watch.call(model, request, _complete)


async def _call(model: Model, request: Request) -> Completion:
    left = context.remaining()
    if left is None:
        return await model.complete(request)
    if left <= 0:
        raise DeadlineExceeded(f"no time left to call {model.name!r}")
    try:
        async with asyncio.timeout(left):
            return await model.complete(request)
    except TimeoutError:
        raise DeadlineExceeded(
            f"{model.name!r} did not answer before the request's deadline"
        ) from None


async def stream_or_complete(model: Model, request: Request) -> AsyncGenerator[StreamEvent, None]:
    """Stream when the model can, else yield its whole answer as one piece.

    As in ``call``, a leaf's stream under a budget goes through the budget (its
    ``around_stream`` reserves before the first piece and settles at the end). Closing
    this stream closes the model's at once, so a consumer that stops early frees what
    the stream holds (a connection, a budget reservation) without waiting for the GC.
    """
    if model.can_stream:
        guard = context.current().values.get("budget")
        if guard is not None and model.kind == "model":
            events = guard.around_stream(model, request)
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
        out.append(TextDelta(completion.text, completion.model))
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
