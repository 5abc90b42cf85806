"""Fallback: try children in order, moving on only for the error types you choose.

    Fallback("safe", [primary, backup], on=["rate_limit", "server_error"], cooldown_s=30)

An error whose type is not in ``on`` propagates at once. A ``ContextLengthError`` moves
on to the next child with a larger ``context_window`` (when the windows are known). A
child that failed with a health error (timeout, rate limit, 5xx, connection, garbage)
cools down for ``cooldown_s`` and is skipped meanwhile, unless every child is cooling
down, in which case the one whose cooldown ends first is tried.

Cooldowns live behind ``CooldownStore`` (get/put/clear by model name): in-process by
default, shared by every Fallback in the process; a shared store can back it later.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import Field

from chorus.config.schema import ModelRef, PatternConfig
from chorus.core.errors import (
    AllModelsFailed,
    ChorusError,
    ContextLengthError,
    MalformedResponse,
    PatternError,
    ProviderConnectionError,
    ProviderTimeout,
    RateLimitError,
    ServerError,
)
from chorus.core.model import Model, call, error_span
from chorus.core.types import Completion, Request, Span
from chorus.patterns._base import combine

__all__ = [
    "DEFAULT_ON",
    "ERROR_TYPES",
    "Cooldown",
    "CooldownStore",
    "Fallback",
    "FallbackConfig",
    "MemoryCooldowns",
    "build",
    "category",
    "cooldown_for",
    "fits",
    "parse_on",
    "plan",
]

ErrorType = Literal["timeout", "rate_limit", "server_error", "connection", "malformed",
                    "context_length"]
#: The error types ``on:`` can name, and the error classes each one covers.
ERROR_TYPES: dict[str, type[ChorusError]] = {
    "timeout": ProviderTimeout,
    "rate_limit": RateLimitError,
    "server_error": ServerError,
    "connection": ProviderConnectionError,
    "malformed": MalformedResponse,
    "context_length": ContextLengthError,
}
#: The retryable errors, plus context length (a larger model may fit the prompt).
DEFAULT_ON: frozenset[str] = frozenset(ERROR_TYPES)


# -- cooldown state --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cooldown:
    """A child is skipped until ``until`` (a ``time.time()`` reading) because of ``reason``."""

    until: float
    reason: str


class CooldownStore(Protocol):
    def get(self, key: str) -> Cooldown | None: ...
    def put(self, key: str, cooldown: Cooldown) -> None: ...
    def clear(self, key: str) -> None: ...


class MemoryCooldowns:
    """Cooldowns in this process's memory."""

    def __init__(self) -> None:
        self._items: dict[str, Cooldown] = {}

    def get(self, key: str) -> Cooldown | None:
        return self._items.get(key)

    def put(self, key: str, cooldown: Cooldown) -> None:
        self._items[key] = cooldown

    def clear(self, key: str) -> None:
        self._items.pop(key, None)


#: The process-wide store every Fallback uses unless given its own.
COOLDOWNS = MemoryCooldowns()


# -- decisions (no I/O) ----------------------------------------------------------------


def parse_on(names: Iterable[str] | None) -> frozenset[str]:
    """The error types to move on for (default: ``DEFAULT_ON``)."""
    if names is None:
        return DEFAULT_ON
    chosen = frozenset(names)
    unknown = chosen - set(ERROR_TYPES)
    if unknown:
        raise ValueError(f"unknown error type(s) in 'on': {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(ERROR_TYPES)}")
    return chosen


def category(error: BaseException) -> str | None:
    """The ``on:`` name of ``error``'s type, or None when no name covers it."""
    for name, cls in ERROR_TYPES.items():
        if isinstance(error, cls):
            return name
    return None


def cooldown_for(error: BaseException, seconds: float) -> float:
    """How long a child cools down after ``error``: not at all for a prompt too long for
    it (the next prompt may fit), at least the server's retry-after for a rate limit."""
    if isinstance(error, ContextLengthError):
        return 0.0
    if isinstance(error, RateLimitError) and error.retry_after is not None and seconds > 0:
        return max(seconds, error.retry_after)
    return seconds


def plan(names: Sequence[str], until: Mapping[str, float], now: float,
         ) -> tuple[list[int], list[int]]:
    """Which children to try, in order, and which to skip as cooling down. ``until`` maps
    a name to the end of its cooldown; when every child is cooling down, the one whose
    cooldown ends first is tried."""
    cooling = [i for i, n in enumerate(names) if until.get(n, now) > now]
    ready = [i for i in range(len(names)) if i not in cooling]
    if ready or not names:
        return ready, cooling
    soonest = min(cooling, key=lambda i: until[names[i]])
    return [soonest], [i for i in cooling if i != soonest]


def fits(window: int | None, too_small: int | None) -> bool:
    """Whether a child with context ``window`` may fit a prompt that overflowed a window of
    ``too_small`` tokens (unknown either way: try it)."""
    return window is None or too_small is None or window > too_small


# -- the pattern -------------------------------------------------------------------------


class Fallback(Model):
    """The first child that answers, trying the next on the chosen error types."""

    kind = "fallback"

    def __init__(
        self,
        name: str,
        models: Sequence[Model],
        *,
        on: Iterable[str] | None = None,
        cooldown_s: float | Mapping[str, float] = 10.0,
        timeout_s: float | None = None,
        cooldowns: CooldownStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name)
        if not models:
            raise ValueError("a fallback needs at least one model")
        self.models = list(models)
        self.on = parse_on(on)
        names = {m.name for m in self.models}
        if isinstance(cooldown_s, Mapping):
            unknown = set(cooldown_s) - names
            if unknown:
                raise ValueError(f"cooldown_s names no model of this fallback: "
                                 f"{', '.join(sorted(unknown))}")
        values = cooldown_s.values() if isinstance(cooldown_s, Mapping) else [cooldown_s]
        if any(v < 0 for v in values):
            raise ValueError("cooldown_s must be >= 0")
        self.cooldown_s = cooldown_s
        self.timeout_s = timeout_s
        self.cooldowns: CooldownStore = cooldowns if cooldowns is not None else COOLDOWNS
        self.clock = clock

    def children(self) -> Sequence[Model]:
        return tuple(self.models)

    def cooldown_of(self, name: str) -> float:
        if isinstance(self.cooldown_s, Mapping):
            return self.cooldown_s.get(name, 0.0)
        return self.cooldown_s

    async def _attempt(self, model: Model, request: Request) -> Completion:
        if self.timeout_s is None:
            return await call(model, request)
        try:
            async with asyncio.timeout(self.timeout_s):
                return await call(model, request)
        except TimeoutError:
            raise ProviderTimeout(f"no answer within {self.timeout_s:g}s",
                                  model=model.name) from None

    async def complete(self, request: Request) -> Completion:
        started = time.perf_counter()
        names = [m.name for m in self.models]
        now = self.clock()
        held = {n: cd for n in names if (cd := self.cooldowns.get(n)) is not None}
        order, skipped_idx = plan(names, {n: cd.until for n, cd in held.items()}, now)
        errors: dict[str, BaseException] = {}
        skipped: list[dict[str, Any]] = []
        for i in skipped_idx:
            cd = held[names[i]]
            reason = f"cooling down {cd.until - now:.1f}s more after {cd.reason}"
            skipped.append({"model": names[i], "reason": reason})
            errors[names[i]] = PatternError(f"skipped: {reason}")
        attempts: list[dict[str, Any]] = []
        failed: list[Span] = []
        too_small: int | None = None
        for i in order:
            model = self.models[i]
            window = getattr(model, "context_window", None)
            if not fits(window, too_small):
                reason = f"context window {window} is not larger than {too_small}"
                skipped.append({"model": model.name, "reason": reason})
                errors[model.name] = PatternError(f"skipped: {reason}")
                continue
            t0 = time.perf_counter()
            try:
                answer = await self._attempt(model, request)
            except ChorusError as exc:
                kind = category(exc)
                if kind is None or kind not in self.on:
                    raise
                errors[model.name] = exc
                failed.append(error_span(model, exc, t0))
                attempts.append({"model": model.name, "error": str(exc), "type": kind})
                pause = cooldown_for(exc, self.cooldown_of(model.name))
                if pause > 0:
                    self.cooldowns.put(model.name, Cooldown(self.clock() + pause, kind))
                if isinstance(exc, ContextLengthError) and isinstance(window, int):
                    too_small = window if too_small is None else max(too_small, window)
                continue
            if model.name in held:
                self.cooldowns.clear(model.name)
            attempts.append({"model": model.name, "ok": True})
            return combine(self, answer.text, started=started, parts=[answer], winner=answer,
                           failed=failed, attributes={"attempts": attempts, "skipped": skipped,
                                                      "answered": model.name})
        raise AllModelsFailed(self.name, {n: errors[n] for n in names if n in errors})


# -- YAML --------------------------------------------------------------------------------


class FallbackConfig(PatternConfig):
    kind: Literal["fallback"] = "fallback"
    models: list[ModelRef] = Field(min_length=1)
    #: Error types that move on to the next model; others propagate. Default: all of them.
    on: list[ErrorType] | None = None
    #: Seconds a failed model is skipped: one number for all, or by model name.
    cooldown_s: float | dict[str, float] = 10.0
    #: Seconds each attempt may take before it counts as a ``timeout``.
    timeout_s: float | None = Field(None, gt=0)


def build(cfg: FallbackConfig, b: Any) -> Fallback:
    models = [b.model(ref, "models", i) for i, ref in enumerate(cfg.models)]
    return Fallback(b.name, models, on=cfg.on, cooldown_s=cfg.cooldown_s,
                    timeout_s=cfg.timeout_s)
