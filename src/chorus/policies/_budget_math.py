"""The budget's arithmetic, without I/O: limits, what is left, what does not fit, and one
request's ledger of spent and held amounts."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from chorus.policies._guarded import Cost

__all__ = ["UNITS", "Ledger", "Limit", "Unit", "Window", "first_over", "fmt", "left"]

Unit = Literal["tokens", "usd"]
UNITS: tuple[Unit, ...] = ("tokens", "usd")
_EPS = 1e-12  # float sums of prices must not refuse a call that fits exactly


@dataclass(frozen=True, slots=True)
class Limit:
    """A cap in tokens and/or US dollars (None: no cap on that unit)."""

    tokens: float | None = None
    usd: float | None = None

    def of(self, unit: Unit) -> float | None:
        return self.tokens if unit == "tokens" else self.usd


@dataclass(frozen=True, slots=True)
class Window(Limit):
    """A cap over ``seconds`` per ``request.metadata[per]`` (or one for all: ``global``)."""

    per: Literal["key", "session", "global"] = "key"
    seconds: float = 3600.0


def of_unit(cost: Cost, unit: Unit) -> float:
    return cost.tokens if unit == "tokens" else cost.usd


def left(limit: float | None, spent: float) -> float:
    """What is left under ``limit`` after ``spent`` (infinite without a limit)."""
    return math.inf if limit is None else limit - spent


def first_over(limit: Limit, used: Cost, ask: Cost) -> Unit | None:
    """The first unit in which ``used`` (spent + held) plus ``ask`` passes ``limit``."""
    for unit in UNITS:
        if of_unit(ask, unit) > left(limit.of(unit), of_unit(used, unit)) + _EPS:
            return unit
    return None


def fmt(unit: Unit, amount: float) -> str:
    return f"${amount:.6f}".rstrip("0").rstrip(".") if unit == "usd" else f"{amount:,.0f} tokens"


@dataclass(slots=True)
class Ledger:
    """One request's spending under one budget: spent, held by calls in flight, calls."""

    limit: Limit
    spent: Cost = field(default_factory=Cost)
    held: Cost = field(default_factory=Cost)
    calls: int = 0

    def hold(self, ask: Cost) -> Unit | None:
        """Hold ``ask`` for a call, or return the unit that does not fit (nothing held)."""
        unit = first_over(self.limit, self.spent + self.held, ask)
        if unit is None:
            self.held = self.held + ask
        return unit

    def settle(self, ask: Cost, actual: Cost | None) -> None:
        """Release the hold of a finished call and count what it really spent."""
        self.held = self.held - ask
        if actual is not None:
            self.spent = self.spent + actual
            self.calls += 1
