"""Budget: caps on tokens and dollars, per request and per key over a time window.

    Budget("capped", system, request=Limit(usd=0.01, tokens=4000),
           window=Window(per="key", seconds=86400, usd=5.0), store=RedisStore(url))

The wrapper puts itself in the request context as its ``leaf_hook``; every leaf call
below it, however deep in the pattern tree, passes through ``BudgetChain.around``
(``core.model.call`` routes leaf calls there while a hook is set). A call is refused
*before* it is made when its estimate (prompt tokens + the output allowance, priced with
the leaf's price) does not fit what is left; after it, the real usage settles the
reservation and the unused part is released. Window budgets reserve atomically in the
store (``Store.reserve``), so concurrent requests, in one process or in many sharing
Redis, never hold more than the limit; spending can pass it only where a call uses more
than its estimate.

Streams are budgeted the same way (``core.model.stream_or_complete`` routes a leaf's
stream through ``BudgetChain.around_stream``): refused before the first piece, settled
with the real usage at the end, and released when the stream fails or its consumer stops
early, charging then only what was used (the prompt and the text received, estimated).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from chorus.config.schema import ModelRef, Node, PatternConfig
from chorus.core.compose import aclose
from chorus.core.context import current
from chorus.core.errors import BudgetExceeded, StoreUnavailable
from chorus.core.model import LeafCall, Model, StreamEvent
from chorus.core.registry import BuildContext
from chorus.core.types import Completion, Request, ToolCallDelta
from chorus.policies._budget_math import (
    UNITS,
    Ledger,
    Limit,
    Unit,
    Window,
    first_over,
    fmt,
    left,
    of_unit,
)
from chorus.policies._guarded import (
    DEFAULT_MAX_TOKENS,
    Cost,
    GuardedWrapper,
    OnStoreError,
    StoreGate,
    approx_tokens,
    estimate,
    leaf_price,
    output_allowance,
    prompt_tokens,
)
from chorus.stores import MemoryStore, Store, decode_number

__all__ = [
    "Budget",
    "BudgetChain",
    "BudgetConfig",
    "Ledger",
    "Limit",
    "Window",
    "build",
    "first_over",
    "fmt",
    "left",
]


# -- the per-request machinery --------------------------------------------------------------


@dataclass(slots=True)
class _Hold:
    ask: Cost
    units: tuple[Unit, ...]  # the window units reserved in the store for this call


class _Active:
    """One Budget wrapper within one request."""

    def __init__(self, budget: Budget, request: Request) -> None:
        self.budget = budget
        self.ledger = Ledger(budget.request)
        self.notes: dict[str, Any] = {}
        self.refused: dict[str, Any] | None = None
        self.window_key: str | None = None
        self.window_total: dict[str, float] = {}
        self.who = ""
        w = budget.window
        if w is not None:
            who = "*" if w.per == "global" else str(request.metadata.get(w.per, "-"))
            self.window_key = f"{budget.key_prefix}{who}:"
            self.who = who

    def _refuse(self, model: str, unit: Unit, ask: Cost, spent: float, limit: float,
                where: str) -> BudgetExceeded:
        asked = of_unit(ask, unit)
        self.refused = {"model": model, "unit": unit, "asked": asked, "spent": spent,
                        "limit": limit, "scope": where}
        return BudgetExceeded(
            f"budget {self.budget.name!r}: a call to {model!r} may cost up to {fmt(unit, asked)}"
            f" but {where} has {fmt(unit, max(0.0, limit - spent))} of {fmt(unit, limit)} left"
            f" ({fmt(unit, spent)} spent or held)",
            spent=spent, asked=asked, limit=limit, unit=unit,
        )

    async def reserve(self, model: str, ask: Cost) -> _Hold:
        unit = self.ledger.hold(ask)
        if unit is not None:
            limit = self.budget.request.of(unit)
            assert limit is not None
            used = of_unit(self.ledger.spent + self.ledger.held, unit)
            raise self._refuse(model, unit, ask, used, limit, "the request")
        try:
            units = await self._reserve_window(model, ask)
        except BaseException:
            self.ledger.settle(ask, None)
            raise
        return _Hold(ask, units)

    async def _reserve_window(self, model: str, ask: Cost) -> tuple[Unit, ...]:
        w, key = self.budget.window, self.window_key
        if w is None or key is None:
            return ()
        gate = self.budget.gate
        done: list[Unit] = []
        try:
            for unit in UNITS:
                limit = w.of(unit)
                if limit is None:
                    continue
                got = await gate.run(gate.store.reserve(key + unit, of_unit(ask, unit), limit,
                                                        w.seconds), self.notes, "reserve")
                if got is None:  # store down and on_store_error is open: not charged
                    continue
                ok, total = got
                if not ok:
                    where = (f"the {w.seconds:g}s window"
                             + ("" if w.per == "global" else f" of {w.per} {self.who!r}"))
                    raise self._refuse(model, unit, ask, total, limit, where)
                done.append(unit)
                self.window_total[unit] = total
        except BaseException:
            await self._adjust(done, Cost() - ask)
            raise
        return tuple(done)

    async def _adjust(self, units: Sequence[Unit], delta: Cost) -> None:
        """Move the window counters by ``delta``; never raises a store error, so that an
        answer already paid for is never lost (the reservation then stays charged)."""
        if self.window_key is None:
            return
        for unit in units:
            amount = of_unit(delta, unit)
            if amount == 0:
                continue
            try:
                self.window_total[unit] = await self.budget.gate.store.incr(
                    self.window_key + unit, amount, self.budget.window.seconds
                    if self.budget.window else None)
            except StoreUnavailable as exc:
                self.budget.gate.failures += 1
                self.notes.setdefault("store_errors", []).append(f"settle: {exc}")

    async def settle(self, hold: _Hold, actual: Cost | None) -> None:
        self.ledger.settle(hold.ask, actual)
        await self._adjust(hold.units, (actual or Cost()) - hold.ask)

    def attributes(self) -> dict[str, Any]:
        b, led = self.budget, self.ledger
        out: dict[str, Any] = {
            "spent_usd": led.spent.usd, "spent_tokens": led.spent.tokens, "calls": led.calls,
        }
        if b.request != Limit():
            out["limit"] = {"usd": b.request.usd, "tokens": b.request.tokens}
        if b.window is not None:
            out["window"] = {"per": b.window.per, "who": self.who, "seconds": b.window.seconds,
                             "limit": {"usd": b.window.usd, "tokens": b.window.tokens},
                             "total": dict(self.window_total)}
        # What is left, the tighter of the request's cap and the window's, by unit.
        for unit in UNITS:
            lefts: list[float] = []
            cap = b.request.of(unit)
            if cap is not None:
                lefts.append(cap - of_unit(led.spent, unit))
            wcap = b.window.of(unit) if b.window is not None else None
            if wcap is not None and unit in self.window_total:
                lefts.append(wcap - self.window_total[unit])
            if lefts:
                out[f"left_{unit}"] = max(0.0, min(lefts))
        if self.refused is not None:
            out["refused"] = self.refused
        out.update(self.notes)
        return out




class BudgetChain:
    """The budgets in force for the current request, outermost first. While one is set,
    ``core.model.call`` sends every leaf call through ``around``, and
    ``core.model.stream_or_complete`` every leaf stream through ``around_stream``."""

    __slots__ = ("active",)

    def __init__(self, active: tuple[_Active, ...]) -> None:
        self.active = active

    async def around(self, model: Model, request: Request, call_leaf: LeafCall) -> Completion:
        holds = await self._reserve(model, request, prompt_tokens(model, request))
        try:
            answer = await call_leaf(model, request)
        except BaseException:
            await _settle(holds, None)
            raise
        await _settle(holds, Cost.of(answer))
        return answer

    async def around_stream(self, model: Model, request: Request
                            ) -> AsyncIterator[StreamEvent]:
        """``around`` for a leaf's stream: reserve before the first piece, settle with the
        real usage when the final Completion comes. A stream that fails or is closed
        early settles what it used: its prompt and the text received (estimated), or
        nothing when no text came (as a failed ``complete`` spends nothing)."""
        prompt = prompt_tokens(model, request)
        holds = await self._reserve(model, request, prompt)
        received: list[str] = []
        try:
            events = model.stream(request)
            try:
                async for event in events:
                    if isinstance(event, Completion):
                        await _settle(holds, Cost.of(event))  # before the answer goes on
                        holds = []
                    elif isinstance(event, ToolCallDelta):
                        received.append(event.arguments)
                    else:
                        received.append(event.text)
                    yield event
            finally:
                await aclose(events)
        finally:
            if holds:
                text = "".join(received)
                used = estimate(prompt, approx_tokens(text), leaf_price(model)) if text \
                    else None
                await _settle(holds, used)

    async def _reserve(self, model: Model, request: Request, prompt: int
                       ) -> list[tuple[_Active, _Hold]]:
        """Hold the call's estimate in every budget, outermost first (all or none)."""
        price = leaf_price(model)
        holds: list[tuple[_Active, _Hold]] = []
        try:
            for act in self.active:
                out = output_allowance(model, request, act.budget.default_max_tokens)
                holds.append((act, await act.reserve(model.name, estimate(prompt, out, price))))
        except BaseException:
            await _settle(holds, None)
            raise
        return holds


async def _settle(holds: list[tuple[_Active, _Hold]], actual: Cost | None) -> None:
    for act, hold in reversed(holds):
        await act.settle(hold, actual)


# -- the wrapper -------------------------------------------------------------------------


class Budget(GuardedWrapper[tuple[_Active, BudgetChain]]):
    """Refuses any leaf call below it that would pass the per-request or window cap. A
    leaf stream below is reserved for before its first piece and settled at its end, or
    on failure or early close (never left held)."""

    kind = "budget"
    can_stream = True

    def __init__(
        self,
        name: str,
        inner: Model,
        *,
        request: Limit | None = None,
        window: Window | None = None,
        store: Store | None = None,
        on_store_error: OnStoreError = "closed",
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
    ) -> None:
        super().__init__(name, inner)
        self.request = request or Limit()
        self.window = window
        limits = [v for lim in (self.request, window) if lim is not None
                  for v in (lim.tokens, lim.usd) if v is not None]
        if not limits:
            raise ValueError("a budget needs a limit: request tokens/usd or window tokens/usd")
        if any(v < 0 for v in limits):
            raise ValueError("budget limits must be >= 0")
        if window is not None and window.seconds <= 0:
            raise ValueError("a budget window needs seconds > 0")
        self.gate = StoreGate(store or MemoryStore(), on_store_error, f"budget {name!r}")
        self.default_max_tokens = default_max_tokens
        self.key_prefix = f"chorus:budget:{name}:"

    # -- the wrapper's steps (chorus.core.Wrapper) ----------------------------------------

    async def enter(self, request: Request, started: float) -> tuple[_Active, BudgetChain]:
        """This request's state under this budget, and the chain with it innermost."""
        if self.window is not None:
            await self.gate.ready()
        act = _Active(self, request)
        parent = current().leaf_hook
        outer = parent.active if isinstance(parent, BudgetChain) else ()
        return act, BudgetChain((*outer, act))

    def inner_scope(self, state: tuple[_Active, BudgetChain]) -> dict[str, Any]:
        return {"leaf_hook": state[1]}

    def attributes(self, state: tuple[_Active, BudgetChain]) -> dict[str, Any]:
        return state[0].attributes()

    async def status(self) -> dict[str, Any]:
        """The limits, and what each window key has spent or holds now (from the store)."""
        out: dict[str, Any] = {"kind": "budget", "name": self.name,
                               "request": {"usd": self.request.usd,
                                           "tokens": self.request.tokens}}
        w = self.window
        if w is None:
            return out
        out["window"] = {"per": w.per, "seconds": w.seconds,
                         "limit": {"usd": w.usd, "tokens": w.tokens}}
        spent: dict[str, dict[str, float]] = {}
        store = self.gate.store
        for key in await store.scan(self.key_prefix):
            who, _, unit = key[len(self.key_prefix):].rpartition(":")
            raw = await store.get(key)
            if raw is not None and unit in UNITS:
                spent.setdefault(who, {})[unit] = decode_number(raw)
        out["spent"] = spent
        return out


# -- YAML --------------------------------------------------------------------------------


class LimitConfig(Node):
    usd: float | None = Field(None, ge=0)
    tokens: int | None = Field(None, ge=0)


class WindowConfig(LimitConfig):
    #: Whose spending is capped: ``request.metadata["key"]``, ``["session"]``, or everyone's.
    per: Literal["key", "session", "global"] = "key"
    seconds: float = Field(gt=0)


class BudgetConfig(PatternConfig):
    kind: Literal["budget"] = "budget"
    inner: ModelRef
    #: Cap on every call one request makes below this wrapper.
    request: LimitConfig | None = None
    #: Cap over a time window per key or session, shared through ``store``.
    window: WindowConfig | None = None
    store: str | dict[str, Any] | None = None
    on_store_error: Literal["open", "closed"] = "closed"
    #: Output tokens assumed for a call whose request and model set no max_tokens.
    default_max_tokens: int = Field(DEFAULT_MAX_TOKENS, ge=1)


def build(cfg: BudgetConfig, b: BuildContext) -> Budget:
    inner = b.model(cfg.inner, "inner")
    req = Limit(cfg.request.tokens, cfg.request.usd) if cfg.request else None
    win = (Window(cfg.window.tokens, cfg.window.usd, per=cfg.window.per,
                  seconds=cfg.window.seconds) if cfg.window else None)
    store = b.store(cfg.store, "store") if win is not None else None
    return Budget(b.name, inner, request=req, window=win, store=store,
                  on_store_error=cfg.on_store_error, default_max_tokens=cfg.default_max_tokens)
