"""Choosing among a route's candidate models: by capability tags, by price, or by
measured latency.

Capabilities and prices come from the leaves (``Provider.capabilities``,
``Provider.price``); a wrapper or composite has the capabilities all its children share
and the summed price of its children. Latency is an exponential moving average per model
name, kept behind the two-method ``LatencyStore`` interface so a shared store can stand
in for the in-process ``LatencyStats``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from chorus.core.model import Model
from chorus.core.pricing import FREE, Price
from chorus.core.types import Request

__all__ = [
    "STRATEGIES",
    "LatencyStats",
    "LatencyStore",
    "Strategy",
    "capabilities_of",
    "capable",
    "estimate_tokens",
    "price_of",
    "select",
]

Strategy = Literal["first", "cheapest", "fastest"]
STRATEGIES: tuple[Strategy, ...] = ("first", "cheapest", "fastest")
#: Output tokens assumed for a price estimate when the request sets no max_tokens.
DEFAULT_OUTPUT_TOKENS = 256


class LatencyStore(Protocol):
    """Where measured latencies live (in process here; a shared store later)."""

    def record(self, model: str, latency_s: float, error: bool = False) -> None: ...

    def latency(self, model: str) -> float | None: ...


class LatencyStats:
    """Per-model exponential moving average of call latency, in this process.

    A failed call counts as ``latency_s + error_penalty_s``, so a failing model looks
    slow and is picked less, yet can still win back its place once it recovers.
    """

    def __init__(self, *, alpha: float = 0.3, error_penalty_s: float = 5.0) -> None:
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self.error_penalty_s = error_penalty_s
        self._ema: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.errors: dict[str, int] = {}

    def record(self, model: str, latency_s: float, error: bool = False) -> None:
        seen = latency_s + (self.error_penalty_s if error else 0.0)
        old = self._ema.get(model)
        self._ema[model] = seen if old is None else old + self.alpha * (seen - old)
        self.calls[model] = self.calls.get(model, 0) + 1
        if error:
            self.errors[model] = self.errors.get(model, 0) + 1

    def latency(self, model: str) -> float | None:
        return self._ema.get(model)


def capabilities_of(model: Model) -> frozenset[str]:
    """A leaf's capability tags; for a wrapper or composite, those all its children share."""
    caps = getattr(model, "capabilities", None)
    if isinstance(caps, frozenset | set):
        return frozenset(caps)
    kids = model.children()
    if not kids:
        return frozenset()
    shared = capabilities_of(kids[0])
    for kid in kids[1:]:
        shared &= capabilities_of(kid)
    return shared


def price_of(model: Model) -> Price:
    """A leaf's price; for a wrapper or composite, the sum over its children."""
    price = getattr(model, "price", None)
    if isinstance(price, Price):
        return price
    total_in = total_out = 0.0
    for kid in model.children():
        p = price_of(kid)
        total_in, total_out = total_in + p.input, total_out + p.output
    return Price(total_in, total_out) if (total_in or total_out) else FREE


def estimate_tokens(request: Request) -> tuple[int, int]:
    """A rough (input, output) token count for comparing prices: ~4 characters a token."""
    chars = sum(len(m.content) for m in request.messages)
    out = request.params.get("max_tokens", None)
    return max(1, chars // 4), out if isinstance(out, int) else DEFAULT_OUTPUT_TOKENS


def capable(candidates: Sequence[Model], require: Sequence[str]) -> list[Model]:
    """The candidates that have every capability in ``require``, in order."""
    if not require:
        return list(candidates)
    need = frozenset(require)
    return [m for m in candidates if need <= capabilities_of(m)]


def select(
    candidates: Sequence[Model],
    strategy: Strategy = "first",
    *,
    require: Sequence[str] = (),
    stats: LatencyStore | None = None,
    tokens: tuple[int, int] = (1, DEFAULT_OUTPUT_TOKENS),
) -> tuple[Model, str]:
    """The candidate to call, and why. Only candidates with ``require`` are considered;
    ties keep the configured order. ValueError when none has the capabilities."""
    pool = capable(candidates, require)
    if not pool:
        names = ", ".join(m.name for m in candidates)
        raise ValueError(f"no candidate ({names}) has all of {sorted(require)}")
    having = f" with {sorted(require)}" if require else ""
    if len(pool) == 1:
        only = pool[0]
        return only, f"{only.name}: the only candidate{having}"
    if strategy == "first":
        return pool[0], f"{pool[0].name}: first candidate{having}"
    if strategy == "cheapest":
        costs = [price_of(m).estimate(*tokens) for m in pool]
        i = min(range(len(pool)), key=costs.__getitem__)
        others = ", ".join(f"{m.name} ${c:.6f}" for m, c in zip(pool, costs, strict=True)
                           if m is not pool[i])
        return pool[i], f"{pool[i].name}: cheapest{having}, est. ${costs[i]:.6f} ({others})"
    if strategy == "fastest":
        if stats is None:
            raise ValueError("selecting the fastest candidate needs latency stats")
        seen = [stats.latency(m.name) for m in pool]
        for m, lat in zip(pool, seen, strict=True):
            if lat is None:
                # Measure every candidate once before trusting the averages.
                return m, f"{m.name}: not measured yet{having}"
        i = min(range(len(pool)), key=lambda j: seen[j] or 0.0)
        others = ", ".join(f"{m.name} {lat:.3f}s" for m, lat in zip(pool, seen, strict=True)
                           if m is not pool[i])
        return pool[i], f"{pool[i].name}: fastest{having}, avg {seen[i]:.3f}s ({others})"
    raise ValueError(f"select must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
