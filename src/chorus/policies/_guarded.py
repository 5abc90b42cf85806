"""What the budget, breaker and rate-limit wrappers share: the cost estimate of a call,
how a wrapper reports its span, and what a failing store does (``on_store_error``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Literal

from typing_extensions import TypeVar

from chorus.core.compose import Wrapper, combine
from chorus.core.errors import ChorusError, NotSupported, StoreUnavailable
from chorus.core.model import Leaf, Model, error_span
from chorus.core.pricing import FREE, Price
from chorus.core.types import Completion, Params, Request, Span
from chorus.stores import Store

__all__ = [
    "Cost",
    "GuardedWrapper",
    "OnStoreError",
    "StoreGate",
    "approx_tokens",
    "attach_span",
    "estimate",
    "leaf_price",
    "output_allowance",
    "prompt_tokens",
    "target_name",
    "wrapped",
]

T = TypeVar("T")
#: A wrapper's state for one call (see ``chorus.core.Wrapper``).
S = TypeVar("S", default=Any)
OnStoreError = Literal["open", "closed"]
#: Output tokens assumed for a call whose request and model set no ``max_tokens``.
DEFAULT_MAX_TOKENS = 512


@dataclass(frozen=True, slots=True)
class Cost:
    """Tokens and US dollars, estimated before a call or measured after it."""

    tokens: float = 0.0
    usd: float = 0.0

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.tokens + other.tokens, self.usd + other.usd)

    def __sub__(self, other: Cost) -> Cost:
        return Cost(self.tokens - other.tokens, self.usd - other.usd)

    @staticmethod
    def of(answer: Completion) -> Cost:
        return Cost(answer.usage.total_tokens, answer.cost_usd)


def approx_tokens(text: str) -> int:
    """About four characters a token, at least one: the estimate without a tokenizer."""
    return max(1, (len(text) + 3) // 4)


def prompt_tokens(model: Model, request: Request) -> int:
    """The prompt's tokens: the model's own count where it has one, else ~4 chars/token."""
    text = "\n".join(m.content for m in request.messages)
    try:
        return model.count_tokens(text)
    except NotSupported:
        return approx_tokens(text)


def output_allowance(model: Model, request: Request, default: int) -> int:
    """The most output tokens the call may produce: the request's ``max_tokens``, else the
    model's default, else ``default``."""
    value = request.params.get("max_tokens", None)
    if not isinstance(value, int):
        params = getattr(model, "params", None)
        value = params.get("max_tokens", None) if isinstance(params, Params) else None
    return value if isinstance(value, int) and value >= 0 else default


def leaf_price(model: Model) -> Price:
    price = getattr(model, "price", None)
    return price if isinstance(price, Price) else FREE


def estimate(prompt: int, output: int, price: Price) -> Cost:
    """The most a call may cost: its prompt plus its whole output allowance."""
    return Cost(prompt + output, price.estimate(prompt, output))


def target_name(model: Model) -> str:
    """The name of the model a policy is about: through single-child wrappers down to the
    leaf (a breaker around a retry around ``gpt`` guards ``gpt``), else the composite's."""
    while not isinstance(model, Leaf):
        kids = model.children()
        if len(kids) != 1:
            break
        model = kids[0]
    return model.name


def wrapped(policy: Model, answer: Completion, started: float,
            attributes: dict[str, Any]) -> Completion:
    """The wrapper's Completion: the inner answer, with the wrapper's span around it."""
    return combine(policy, answer.text, started=started, parts=[answer], winner=answer,
                   attributes=attributes)


def attach_span(policy: Model, error: ChorusError, started: float,
                attributes: dict[str, Any], inner_started: float | None = None) -> None:
    """Give ``error`` the wrapper's span (the failed inner call as its child, when the
    inner model was called), so the trace keeps what the policy did."""
    children: list[Span] = []
    inner = policy.children()
    if inner_started is not None and inner:
        children.append(error_span(inner[0], error, inner_started))
    span = Span(kind=policy.kind, name=policy.name, latency_s=time.perf_counter() - started,
                attributes=attributes, children=children, error=str(error))
    error.trace = span


class StoreGate:
    """Runs a policy's store operations: checks the store once at start-up (an
    unreachable store is one clear error then), and afterwards applies
    ``on_store_error``: ``open`` lets the call through and notes the failure,
    ``closed`` refuses it with a clear error."""

    def __init__(self, store: Store, on_store_error: OnStoreError, policy: str) -> None:
        if on_store_error not in ("open", "closed"):
            raise ValueError(f"on_store_error must be 'open' or 'closed', got {on_store_error!r}")
        self.store = store
        self.on_store_error = on_store_error
        self.policy = policy
        self._checked = False
        #: Store failures seen (each let through when ``open``), for the trace and status.
        self.failures = 0

    async def ready(self) -> None:
        if not self._checked:
            await self.store.ping()
            self._checked = True

    async def run(self, op: Awaitable[T], notes: dict[str, Any], what: str) -> T | None:
        """``op``'s result; None when the store failed and ``on_store_error`` is ``open``."""
        try:
            return await op
        except StoreUnavailable as exc:
            self.failures += 1
            if self.on_store_error == "closed":
                raise StoreUnavailable(
                    f"{self.policy}: cannot {what}: {exc} (refused: on_store_error is 'closed')"
                ) from exc
            notes.setdefault("store_errors", []).append(f"{what}: {exc}")
            return None


class GuardedWrapper(Wrapper[S]):
    """A wrapper around one model whose state lives in a store behind a StoreGate
    (budget, breaker, rate limit). Its span records ``attributes``: on the answer, and
    on the error of a failed inner call."""

    gate: StoreGate

    def attributes(self, state: S) -> dict[str, Any]:
        """What this call's span records."""
        return {}

    async def failed(self, state: S, error: ChorusError, started: float,
                     inner_started: float, sent: bool) -> bool:
        attach_span(self, error, started, self.attributes(state), inner_started)
        return False

    async def answered(self, state: S, answer: Completion, started: float) -> Completion:
        return wrapped(self, answer, started, self.attributes(state))

    async def aclose(self) -> None:
        """Close the inner model and this policy's store connection (a store shared by
        several policies reopens on its next use)."""
        await super().aclose()
        await self.gate.store.aclose()
