"""Circuit breaker: stop calling a model that keeps failing, probe it after a cool-down.

    Breaker("guarded", model, failures=5, window_s=60, cooldown_s=30, store=RedisStore(url))

Closed: calls go through; a health failure (a retryable error: timeout, 5xx, rate limit,
connection, garbage; or every model of a composite failing) is counted in a window of
``window_s``. At ``failures`` in the window the breaker opens: calls are refused at once
with ``ServerError("circuit open ... retry in Ns")`` (which a Fallback moves on from).
After ``cooldown_s`` one caller, in whatever process, claims the half-open probe; its
success closes the breaker, its failure opens it again for another cool-down. With
``wait=True`` a refused call waits for the probe instead, when that fits the deadline.
A stream is admitted the same way before it starts; a failure during it counts as a
failure, a stream that reaches its final answer as a success.

State is shared per model name through the store: the state as JSON in one key, the
failure count in an atomic counter that expires with its window, and the probe claim in
an atomic ``reserve`` so that only one caller probes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from pydantic import Field

from chorus.config.schema import ModelRef, PatternConfig
from chorus.core.context import remaining
from chorus.core.errors import AllModelsFailed, ChorusError, ServerError, StoreUnavailable
from chorus.core.model import Model
from chorus.core.registry import BuildContext
from chorus.core.types import Completion, Request
from chorus.policies._guarded import (
    GuardedWrapper,
    OnStoreError,
    StoreGate,
    attach_span,
    target_name,
)
from chorus.stores import MemoryStore, Store

__all__ = [
    "Admission",
    "Breaker",
    "BreakerConfig",
    "BreakerState",
    "admit",
    "after_failure",
    "build",
    "trips",
]

State = Literal["closed", "open", "half_open"]


# -- the state machine (no I/O) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BreakerState:
    """What the store holds for one model. ``opened_at`` is a ``time.time()`` reading, so
    processes on one host (or hosts with synced clocks) agree on when a cool-down ends."""

    state: State = "closed"
    opened_at: float = 0.0
    failures: int = 0

    def dumps(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def loads(cls, raw: bytes | None) -> BreakerState:
        if raw is None:
            return cls()
        data = json.loads(raw)
        return cls(data["state"], float(data["opened_at"]), int(data["failures"]))


@dataclass(frozen=True, slots=True)
class Admission:
    """Whether a call may go ahead: ``call`` (closed), ``probe`` (the cool-down is over:
    claim the probe), or ``reject`` (retry in ``retry_in`` seconds)."""

    action: Literal["call", "probe", "reject"]
    retry_in: float = 0.0


def admit(state: BreakerState, now: float, cooldown_s: float) -> Admission:
    if state.state == "closed":
        return Admission("call")
    ready_at = state.opened_at + cooldown_s
    if now < ready_at:
        return Admission("reject", ready_at - now)
    return Admission("probe")


def after_failure(state: BreakerState, failures: int, threshold: int,
                  now: float) -> BreakerState:
    """The state after a health failure, ``failures`` being the count in the window: a
    failed probe opens the breaker again; a closed breaker opens at ``threshold``."""
    if state.state != "closed" or failures >= threshold:
        return BreakerState("open", now, failures)
    return BreakerState("closed", 0.0, failures)


def trips(error: BaseException) -> bool:
    """Whether ``error`` says the model is unhealthy (not the caller's fault)."""
    return isinstance(error, AllModelsFailed) or (
        isinstance(error, ChorusError) and error.retryable
    )


# -- the wrapper ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Call:
    """One call through the breaker: the state it was admitted in, whether it is the
    half-open probe, and what its span records."""

    seen: BreakerState
    probe: bool
    attrs: dict[str, Any]
    notes: dict[str, Any]


class Breaker(GuardedWrapper[_Call]):
    """Refuses calls to a model while its circuit is open; state shared through a store."""

    kind = "breaker"
    can_stream = True

    def __init__(
        self,
        name: str,
        inner: Model,
        *,
        failures: int = 5,
        window_s: float = 60.0,
        cooldown_s: float = 30.0,
        wait: bool = False,
        max_wait_s: float = 60.0,
        probe_timeout_s: float = 60.0,
        store: Store | None = None,
        on_store_error: OnStoreError = "open",
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name, inner)
        if failures < 1:
            raise ValueError("failures must be at least 1")
        if min(window_s, cooldown_s, probe_timeout_s) <= 0:
            raise ValueError("window_s, cooldown_s and probe_timeout_s must be > 0")
        self.failures = failures
        self.window_s = window_s
        self.cooldown_s = cooldown_s
        self.wait = wait
        self.max_wait_s = max_wait_s
        self.probe_timeout_s = probe_timeout_s
        self.gate = StoreGate(store or MemoryStore(), on_store_error, f"breaker {name!r}")
        self.clock = clock
        # Per model, so every breaker around the same model shares one state.
        self.model_name = target_name(inner)
        self.key = f"chorus:breaker:{self.model_name}"
        # How often a caller waiting on someone else's probe looks again.
        self._poll_s = max(0.01, min(1.0, cooldown_s / 10))

    async def _state(self, notes: dict[str, Any]) -> BreakerState:
        raw = await self.gate.run(self.gate.store.get(self.key), notes, "read breaker state")
        return BreakerState.loads(raw)

    async def _admit(self, notes: dict[str, Any]) -> tuple[BreakerState, bool]:
        """Wait (when allowed) until the call may go ahead; return the state seen and
        whether this call is the half-open probe. Raises ServerError when refused."""
        waited = 0.0
        while True:
            state = await self._state(notes)
            adm = admit(state, self.clock(), self.cooldown_s)
            if adm.action == "call":
                return state, False
            if adm.action == "probe":
                claim = await self.gate.run(
                    self.gate.store.reserve(self.key + ":probe", 1, 1, self.probe_timeout_s),
                    notes, "claim the probe")
                if claim is None or claim[0]:
                    half = BreakerState("half_open", state.opened_at, state.failures)
                    await self.gate.run(self.gate.store.set(self.key, half.dumps()), notes,
                                        "write breaker state")
                    return state, True
                adm = Admission("reject", self._poll_s)
            left = remaining()
            budget = self.max_wait_s - waited if left is None else min(
                left, self.max_wait_s - waited)
            if not self.wait or adm.retry_in > budget:
                notes["waited_s"] = waited
                raise ServerError(
                    f"circuit open ({state.failures} failures within {self.window_s:g}s), "
                    f"retry in {adm.retry_in:.1f}s", model=self.model_name)
            await asyncio.sleep(adm.retry_in)
            waited += adm.retry_in
            notes["waited_s"] = waited

    async def _record(self, state: BreakerState, probe: bool, error: BaseException | None,
                      notes: dict[str, Any]) -> State:
        """Write what the call showed and return the state after it. A store failure here
        is noted, never raised: the answer (or the model's own error) must not be lost."""
        try:
            return await self._write_outcome(state, probe, error, notes)
        except StoreUnavailable as exc:
            self.gate.failures += 1
            notes.setdefault("store_errors", []).append(f"record the outcome: {exc}")
            return state.state

    async def _write_outcome(self, state: BreakerState, probe: bool,
                             error: BaseException | None, notes: dict[str, Any]) -> State:
        store = self.gate.store
        if error is None or not trips(error):
            # Any answer from a probe, even a 400, shows the model is reachable again.
            if probe:
                await store.set(self.key, BreakerState().dumps())
                await store.delete(self.key + ":failures")
                await store.delete(self.key + ":probe")
            return "closed"
        if probe:
            new = after_failure(BreakerState("half_open"), state.failures, self.failures,
                                self.clock())
        else:
            count = int(await store.incr(self.key + ":failures", 1, self.window_s))
            notes["failures"] = count
            new = after_failure(state, count, self.failures, self.clock())
        if new.state == "open":
            await store.set(self.key, new.dumps())
            await store.delete(self.key + (":probe" if probe else ":failures"))
        return new.state

    # -- the wrapper's steps (chorus.core.Wrapper) ----------------------------------------

    async def enter(self, request: Request, started: float) -> _Call:
        """Admit the call (or raise with the span): the state seen, whether this call is
        the probe."""
        notes: dict[str, Any] = {}
        await self.gate.ready()
        try:
            state, probe = await self._admit(notes)
        except ChorusError as exc:
            attach_span(self, exc, started, {"state": "open", "model": self.model_name,
                                             **notes})
            raise
        return _Call(state, probe, {"model": self.model_name, "state": state.state,
                                    "probe": probe}, notes)

    def attributes(self, state: _Call) -> dict[str, Any]:
        return {**state.attrs, **state.notes}

    async def failed(self, state: _Call, error: ChorusError, started: float,
                     inner_started: float, sent: bool) -> bool:
        """A failure, before a stream or during it, counts as a failure."""
        state.attrs["after"] = await self._record(state.seen, state.probe, error, state.notes)
        return await super().failed(state, error, started, inner_started, sent)

    async def abandoned(self, state: _Call) -> None:
        """A probe cancelled (or a probe stream closed early) showed nothing: let another
        caller probe at once."""
        if state.probe:
            with contextlib.suppress(StoreUnavailable):
                await self.gate.store.delete(self.key + ":probe")

    async def answered(self, state: _Call, answer: Completion, started: float
                       ) -> Completion:
        """An answer (a whole stream) counts as a success."""
        state.attrs["after"] = await self._record(state.seen, state.probe, None, state.notes)
        return await super().answered(state, answer, started)

    async def status(self) -> dict[str, Any]:
        """The state, the failures in the current window, and when a probe may go."""
        store = self.gate.store
        state = BreakerState.loads(await store.get(self.key))
        raw = await store.get(self.key + ":failures")
        counted = int(float(raw)) if raw is not None else 0
        adm = admit(state, self.clock(), self.cooldown_s)
        return {"kind": "breaker", "name": self.name, "model": self.model_name,
                "state": state.state, "failures": counted if state.state == "closed"
                else state.failures, "threshold": self.failures, "window_s": self.window_s,
                "retry_in_s": adm.retry_in}


# -- YAML --------------------------------------------------------------------------------


class BreakerConfig(PatternConfig):
    kind: Literal["breaker"] = "breaker"
    inner: ModelRef
    #: Health failures within ``window_s`` that open the circuit.
    failures: int = Field(5, ge=1)
    window_s: float = Field(60.0, gt=0)
    #: Seconds the circuit stays open before one probe call is let through.
    cooldown_s: float = Field(30.0, gt=0)
    #: Wait for the probe (within the deadline, at most ``max_wait_s``) instead of failing.
    wait: bool = False
    max_wait_s: float = Field(60.0, ge=0)
    #: A probe that neither succeeds nor fails in this time lets another caller probe.
    probe_timeout_s: float = Field(60.0, gt=0)
    store: str | dict[str, Any] | None = None
    on_store_error: Literal["open", "closed"] = "open"


def build(cfg: BreakerConfig, b: BuildContext) -> Breaker:
    return Breaker(
        b.name, b.model(cfg.inner, "inner"), failures=cfg.failures, window_s=cfg.window_s,
        cooldown_s=cfg.cooldown_s, wait=cfg.wait, max_wait_s=cfg.max_wait_s,
        probe_timeout_s=cfg.probe_timeout_s, store=b.store(cfg.store, "store"),
        on_store_error=cfg.on_store_error,
    )
