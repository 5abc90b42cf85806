"""FunctionModel: a sync or async Python callable as a model.

The callable takes the Request and returns the answer's text, a ``ToolCall`` (or a
tuple of them) to call tools, or a whole Completion.
A sync callable runs in a worker thread so it never blocks the event loop.

    FunctionModel("upper", lambda req: req.prompt.upper())
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from chorus.config.schema import ProviderConfig
from chorus.core.errors import MalformedResponse
from chorus.core.registry import BuildContext
from chorus.core.types import Completion, Request, ToolCall, Usage
from chorus.providers._base import Provider, common_kwargs
from chorus.providers.scripted import word_count

__all__ = ["FunctionModel", "FunctionConfig", "import_callable"]

Result = str | Completion | ToolCall | tuple[ToolCall, ...]
Fn = Callable[[Request], Result | Awaitable[Result]]


class FunctionModel(Provider):
    provider = "function"

    def __init__(self, name: str, fn: Fn, *, thread: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("local", True)
        super().__init__(name, **kwargs)
        self.fn = fn
        self._is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)  # noqa: B004 - a callable object's async __call__
        )
        self.thread = thread

    async def complete(self, request: Request) -> Completion:
        started = time.perf_counter()
        request = self.prepare(request)
        if self._is_async:
            result = await self.fn(request)  # type: ignore[misc]
        elif self.thread:
            result = await asyncio.to_thread(self.fn, request)
        else:
            result = self.fn(request)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, Completion):
            return result
        calls: tuple[ToolCall, ...] = ()
        if isinstance(result, ToolCall):
            calls = (result,)
        elif isinstance(result, tuple) and result and all(
                isinstance(c, ToolCall) for c in result):
            calls = result
        elif not isinstance(result, str):
            raise MalformedResponse(
                f"function returned {type(result).__name__}, expected str, Completion or "
                "ToolCall(s)", model=self.name,
            )
        text = "" if calls else result
        usage = Usage(sum(word_count(m.content) for m in request.messages),
                      word_count(text or " ".join(c.arguments for c in calls)))
        return self.finish(text, usage, started, tool_calls=calls,
                           finish_reason="tool_calls" if calls else "stop")


def import_callable(spec: str) -> Callable[..., Any]:
    """``package.module:attribute`` to the object it names."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"function must look like 'package.module:name', got {spec!r}")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r}: {exc}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"{module_name!r} has no attribute {attr!r}") from None
    if not callable(obj):
        raise ValueError(f"{spec!r} is not callable")
    return obj  # type: ignore[no-any-return]


class FunctionConfig(ProviderConfig):
    provider: Literal["function"] = "function"
    #: ``package.module:callable``
    function: str
    thread: bool = True


def build(cfg: FunctionConfig, b: BuildContext) -> FunctionModel:
    return FunctionModel(b.name, import_callable(cfg.function), thread=cfg.thread,
                         **common_kwargs(cfg))
