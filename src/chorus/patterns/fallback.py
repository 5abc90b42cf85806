"""Fallback: try children in order, moving on only for the error types you choose.

    Fallback("safe", [primary, backup], on=["rate_limit", "server_error"], cooldown_s=30)

An error whose type is not in ``on`` propagates at once. A ``ContextLengthError`` moves
on to the next child with a larger ``context_window`` (when the windows are known). A
child that failed with a health error (timeout, rate limit, 5xx, connection, garbage)
cools down for ``cooldown_s`` and is skipped meanwhile, unless every child is cooling
down, in which case the one whose cooldown ends first is tried.

Cooldowns live behind ``CooldownStore`` (get/put/clear by model name): in-process by
default, shared by every Fallback in the process; a shared store can back it later.

Under a deadline, each attempt gets a share of what is left (an even split over the
children still to try), so a silent first child cannot use up the time the last one needs.

Streamed, a child that fails before its first piece is passed over as above. One that
breaks after pieces were sent is *rescued* (``rescue=True``, the default): the next child
continues the answer (see ``_rescue``), the caller's stream goes on without repeated
text, the seam is recorded in the trace (``rescues``) and both parts are billed. With
``rescue=False`` the error ends the stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import Field

from chorus.config.schema import ModelRef, PatternConfig
from chorus.core import context
from chorus.core.capabilities import missing
from chorus.core.compose import Relay, combine, raise_if_sent
from chorus.core.errors import (
    AllModelsFailed,
    BadRequestError,
    CapabilityMissing,
    ChorusError,
    ContextLengthError,
    DeadlineExceeded,
    MalformedResponse,
    PatternError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeout,
    RateLimitError,
    ServerError,
)
from chorus.core.model import Model, StreamEvent, call, error_span, stream_or_complete
from chorus.core.registry import BuildContext
from chorus.core.types import Completion, Request, Span, TextDelta, ToolCallDelta
from chorus.patterns._rescue import Form, Seam, continuation, prefills

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
    "share",
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


def share(remaining: float | None, tries_left: int, timeout_s: float | None
          ) -> float | None:
    """Seconds one attempt may take: an even share of the time ``remaining`` over the
    ``tries_left`` children still to try (this one included), at most ``timeout_s``."""
    limit = None if remaining is None else max(remaining, 0.0) / max(tries_left, 1)
    if timeout_s is not None:
        limit = timeout_s if limit is None else min(limit, timeout_s)
    return limit


# -- the pattern -------------------------------------------------------------------------


@dataclass(slots=True)
class _Run:
    """One request's way through the children: the order, the errors, the trace."""

    started: float
    order: list[int]
    held: dict[str, Cooldown]
    now: float
    errors: dict[str, BaseException] = field(default_factory=dict)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    failed: list[Span] = field(default_factory=list)
    too_small: int | None = None


class Fallback(Model):
    """The first child that answers, trying the next on the chosen error types."""

    kind = "fallback"
    can_stream = True
    family = "sequential"

    def __init__(
        self,
        name: str,
        models: Sequence[Model],
        *,
        on: Iterable[str] | None = None,
        cooldown_s: float | Mapping[str, float] = 10.0,
        timeout_s: float | None = None,
        rescue: bool = True,
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
        self.rescue = rescue
        self.cooldowns: CooldownStore = cooldowns if cooldowns is not None else COOLDOWNS
        self.clock = clock

    def children(self) -> Sequence[Model]:
        return tuple(self.models)

    def cooldown_of(self, name: str) -> float:
        if isinstance(self.cooldown_s, Mapping):
            return self.cooldown_s.get(name, 0.0)
        return self.cooldown_s

    # -- the decisions both paths share

    def _begin(self) -> _Run:
        names = [m.name for m in self.models]
        now = self.clock()
        held = {n: cd for n in names if (cd := self.cooldowns.get(n)) is not None}
        order, skipped_idx = plan(names, {n: cd.until for n, cd in held.items()}, now)
        run = _Run(time.perf_counter(), order, held, now)
        for i in skipped_idx:
            cd = held[names[i]]
            reason = f"cooling down {cd.until - now:.1f}s more after {cd.reason}"
            run.skipped.append({"model": names[i], "reason": reason})
            run.errors[names[i]] = PatternError(f"skipped: {reason}")
        return run

    def _fits(self, run: _Run, model: Model, request: Request) -> bool:
        """Whether ``model`` can take ``request``: it accepts what the request needs and
        its context window is larger than one found too small; else a skip, with why."""
        lack = missing(model, request)
        if lack:
            err = CapabilityMissing(model.name, lack)
            run.skipped.append({"model": model.name, "reason": str(err)})
            run.errors[model.name] = err
            return False
        window = getattr(model, "context_window", None)
        if fits(window, run.too_small):
            return True
        reason = f"context window {window} is not larger than {run.too_small}"
        run.skipped.append({"model": model.name, "reason": reason})
        run.errors[model.name] = PatternError(f"skipped: {reason}")
        return False

    def _failed(self, run: _Run, model: Model, exc: ChorusError, t0: float) -> None:
        """Record a child's failure, or raise it when its type does not move on."""
        kind = category(exc)
        if kind is None or kind not in self.on:
            raise exc
        run.errors[model.name] = exc
        run.failed.append(error_span(model, exc, t0))
        run.attempts.append({"model": model.name, "error": str(exc), "type": kind})
        pause = cooldown_for(exc, self.cooldown_of(model.name))
        if pause > 0:
            self.cooldowns.put(model.name, Cooldown(self.clock() + pause, kind))
        window = getattr(model, "context_window", None)
        if isinstance(exc, ContextLengthError) and isinstance(window, int):
            run.too_small = window if run.too_small is None else max(run.too_small, window)

    def _answered(self, run: _Run, model: Model) -> None:
        if model.name in run.held:
            self.cooldowns.clear(model.name)
        run.attempts.append({"model": model.name, "ok": True})

    def _all_failed(self, run: _Run) -> AllModelsFailed:
        return AllModelsFailed(self.name, {m.name: run.errors[m.name] for m in self.models
                                           if m.name in run.errors})

    def _limit(self, run: _Run, position: int) -> float | None:
        return share(context.remaining(), len(run.order) - position, self.timeout_s)

    @staticmethod
    def _late(limit: float, model: Model) -> ProviderTimeout:
        return ProviderTimeout(f"no answer within {limit:.3g}s (this attempt's time)",
                               model=model.name)

    # -- whole answers

    async def _attempt(self, model: Model, request: Request, limit: float | None
                       ) -> Completion:
        if limit is None:
            return await call(model, request)
        try:
            with context.scope(deadline_s=limit):
                async with asyncio.timeout(limit):
                    return await call(model, request)
        except (TimeoutError, DeadlineExceeded):
            left = context.remaining()
            if left is not None and left <= 0:
                raise DeadlineExceeded(f"{self.name!r}: the request's deadline passed "
                                       f"while {model.name!r} answered") from None
            raise self._late(limit, model) from None

    async def complete(self, request: Request) -> Completion:
        run = self._begin()
        for pos, i in enumerate(run.order):
            model = self.models[i]
            if not self._fits(run, model, request):
                continue
            t0 = time.perf_counter()
            try:
                answer = await self._attempt(model, request, self._limit(run, pos))
            except ChorusError as exc:
                self._failed(run, model, exc, t0)
                continue
            self._answered(run, model)
            return combine(self, answer.text, started=run.started, parts=[answer],
                           winner=answer, failed=run.failed, attributes=self._attributes(
                               run, model))
        raise self._all_failed(run)

    def _attributes(self, run: _Run, model: Model, rescues: list[dict[str, Any]] | None = None
                    ) -> dict[str, Any]:
        out = {"attempts": run.attempts, "skipped": run.skipped, "answered": model.name}
        if rescues:
            out["rescues"] = rescues
        return out

    # -- streams

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        """The first child that streams an answer; a break after the first piece is
        rescued by the next child (or ends the stream, with ``rescue=False``)."""
        run = self._begin()
        sent: list[str] = []
        parts: list[Completion] = []  # broken parts that were sent: billed
        rescues: list[dict[str, Any]] = []
        broke = ""  # the child whose stream broke last
        called = False  # whether a tool-call piece was passed on
        for pos, i in enumerate(run.order):
            model = self.models[i]
            if not self._fits(run, model, request):
                continue
            forms: list[Form | None] = [None]
            if sent:
                forms = ["prefix", "instruction"] if prefills(model) else ["instruction"]
            for form in forms:
                t0 = time.perf_counter()
                seam = Seam("".join(sent)) if form is not None else None
                req = request if form is None else continuation(request, "".join(sent), form)
                got = len(sent)
                relay = Relay(self._attempt_stream(model, req, self._limit(run, pos)), model)
                try:
                    async for event in relay:
                        if isinstance(event, ToolCallDelta):
                            called = True  # a half-sent tool call cannot be continued
                            yield event
                            continue
                        if seam is None:  # as it came, its logprobs with it
                            if event.text:
                                sent.append(event.text)
                                yield event
                            continue
                        text = seam.feed(event.text)
                        if text:
                            sent.append(text)
                            yield TextDelta(text, event.model)
                    tail = seam.flush() if seam is not None else ""
                    if tail:
                        sent.append(tail)
                        done = relay.received
                        yield TextDelta(tail, done.model if done else model.name)
                    final = relay.final
                except BadRequestError as exc:
                    if form == "prefix" and len(sent) == got:
                        # The model refused the prefill: ask it to continue instead.
                        run.failed.append(error_span(model, exc, t0))
                        run.attempts.append({"model": model.name, "error": str(exc),
                                             "type": "prefill_refused"})
                        continue
                    raise
                except ChorusError as exc:
                    partial = exc.partial if isinstance(exc, ProviderError) else None
                    if partial is not None:
                        parts.append(partial)
                    if len(sent) > got:
                        broke = model.name
                    # After the first piece only a rescue may go on (never past a tool call).
                    why = "rescue is off" if not called else "a tool call was sent"
                    raise_if_sent(exc, bool(sent or called) and (called or not self.rescue),
                                  note=f"fallback {self.name!r}: the stream broke after its "
                                  f"first piece and {why}")
                    self._failed(run, model, exc, t0)
                    break
                if seam is not None:
                    rescues.append({"from": broke, "to": model.name, "form": form,
                                    "after_chars": len(seam.sent),
                                    "dropped_chars": seam.dropped})
                self._answered(run, model)
                text = "".join(sent)
                yield combine(self, text, started=run.started, parts=[*parts, final],
                              winner=final, failed=run.failed,
                              attributes=self._attributes(run, model, rescues))
                return
        raise self._all_failed(run)

    async def _attempt_stream(self, model: Model, request: Request, limit: float | None
                              ) -> AsyncIterator[StreamEvent]:
        """``model``'s stream, each step within this attempt's share of the deadline."""
        events = stream_or_complete(model, request)
        ends = None if limit is None else time.monotonic() + limit
        try:
            while True:
                if ends is None:
                    try:
                        event = await anext(events)
                    except StopAsyncIteration:
                        return
                else:
                    left = ends - time.monotonic()
                    try:
                        with context.scope(deadline_s=max(left, 0.0)):
                            async with asyncio.timeout(max(left, 0.0)):
                                event = await anext(events)
                    except StopAsyncIteration:
                        return
                    except (TimeoutError, DeadlineExceeded):
                        total = context.remaining()
                        if total is not None and total <= 0:
                            raise DeadlineExceeded(f"{self.name!r}: the request's deadline "
                                                   f"passed while {model.name!r} answered"
                                                   ) from None
                        assert limit is not None
                        raise self._late(limit, model) from None
                yield event
        finally:
            await events.aclose()


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
    #: Continue a stream that broke after its first piece on the next model; false ends
    #: the stream with an error event instead.
    rescue: bool = True


def build(cfg: FallbackConfig, b: BuildContext) -> Fallback:
    models = [b.model(ref, "models", i) for i, ref in enumerate(cfg.models)]
    return Fallback(b.name, models, on=cfg.on, cooldown_s=cfg.cooldown_s,
                    timeout_s=cfg.timeout_s, rescue=cfg.rescue)
