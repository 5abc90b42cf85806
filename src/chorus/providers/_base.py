"""What every leaf model shares: default parameters, a price, and how it reports a call."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from chorus.config.schema import ProviderConfig
from chorus.core.model import Model
from chorus.core.pricing import FREE, Price, lookup_price
from chorus.core.types import Completion, Params, Request, Span, Usage

__all__ = ["KeyedEndpointConfig", "Provider", "common_kwargs", "endpoint_kwargs"]


class Provider(Model):
    """A leaf: one real (or scripted) model. Subclasses implement ``complete``."""

    kind = "model"
    #: The provider name used in YAML (``provider: NAME``).
    provider: str = "provider"

    def __init__(
        self,
        name: str,
        *,
        model_id: str | None = None,
        params: Params | None = None,
        price: Price | None = None,
        capabilities: Sequence[str] = (),
        context_window: int | None = None,
        local: bool = False,
    ) -> None:
        super().__init__(name)
        self.model_id = model_id or name
        self.params = params or Params()
        found = price or (None if local else lookup_price(self.model_id))
        self.price_known = found is not None or local
        self.price = found or FREE
        self.capabilities = frozenset(capabilities)
        self.context_window = context_window

    def prepare(self, request: Request) -> Request:
        """The request with this model's default parameters filling the unset ones."""
        return request.with_defaults(self.params)

    def finish(
        self,
        text: str,
        usage: Usage,
        started: float,
        *,
        finish_reason: str | None = "stop",
        logprob: float | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> Completion:
        """The Completion (and its span) for one call that began at ``started``
        (a ``time.perf_counter()`` reading)."""
        latency = time.perf_counter() - started
        cost = self.price.cost(usage)
        span = Span(
            kind="model",
            name=self.name,
            model=self.name,
            usage=usage,
            cost_usd=cost,
            latency_s=latency,
            start=time.time() - latency,
            attributes={"provider": self.provider, "model_id": self.model_id,
                        "finish_reason": finish_reason, **(attributes or {})},
        )
        return Completion(text, self.name, usage, cost, latency, finish_reason, span, logprob)

    def usable(self) -> tuple[bool, str]:
        """Whether this model can be called now (package installed, key present)."""
        return True, "ok"


def common_kwargs(cfg: ProviderConfig) -> dict[str, Any]:
    """The Provider keyword arguments every provider's config carries."""
    try:
        params = Params.from_dict(cfg.params)
    except TypeError as exc:
        raise ValueError(f"params: {exc}") from None
    return {
        "params": params,
        "price": Price(cfg.price.input, cfg.price.output) if cfg.price else None,
        "capabilities": cfg.capabilities,
        "context_window": cfg.context_window,
    }


class KeyedEndpointConfig(ProviderConfig):
    """The keys of a hosted HTTP endpoint reached with an API key (OpenAI-compatible,
    Anthropic); each subclass sets its own ``base_url`` and ``api_key_env`` defaults."""

    #: The model id the endpoint knows (default: the model's name in the config).
    model: str | None = None
    base_url: str
    #: The environment variable holding the API key, read at call time.
    api_key_env: str
    #: A literal key (prefer ``api_key_env``, or ``${ENV}`` interpolation).
    api_key: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    #: Seconds to wait to connect and between bytes of the answer.
    timeout: float = Field(60.0, gt=0)


def endpoint_kwargs(cfg: KeyedEndpointConfig) -> dict[str, Any]:
    """The keyword arguments a keyed endpoint's model takes from its config."""
    return {"model_id": cfg.model, "base_url": cfg.base_url, "api_key": cfg.api_key,
            "api_key_env": cfg.api_key_env, "headers": cfg.headers, "timeout": cfg.timeout,
            **common_kwargs(cfg)}
