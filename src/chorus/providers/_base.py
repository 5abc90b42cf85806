"""What every leaf model shares: default parameters, a price, and how it reports a call."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, ClassVar

from pydantic import Field

from chorus.config.schema import AcceptsConfig, ProviderConfig
from chorus.core.capabilities import ALL_FEATURES, builtin_accepts
from chorus.core.errors import CapabilityMissing
from chorus.core.model import Leaf, StreamEvent
from chorus.core.pricing import FREE, Price, lookup_price
from chorus.core.types import (
    Completion,
    Params,
    Request,
    Span,
    TokenLogprob,
    ToolCall,
    Usage,
)
from chorus.providers._pace import NO_LIMITS, Limits, paced

__all__ = ["KeyedEndpointConfig", "Provider", "common_kwargs", "endpoint_kwargs",
           "estimate_tokens"]


def estimate_tokens(text: str) -> int:
    """About four characters per token: only for servers that report no usage."""
    return max(1, round(len(text) / 4))


class Provider(Leaf):
    """A leaf: one real (or scripted) model. Subclasses implement ``complete``."""

    #: The provider name used in YAML (``provider: NAME``).
    provider: str = "provider"
    #: Whether the model continues a conversation's last assistant message (a prefill);
    #: a stream rescue gives such a model the partial answer as that prefix.
    default_prefill: ClassVar[bool] = False

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
        accepts: Iterable[str] | AcceptsConfig | None = None,
        limits: Limits = NO_LIMITS,
        prefill: bool | None = None,
    ) -> None:
        super().__init__(name)
        self.limits = limits
        self.prefill = self.default_prefill if prefill is None else prefill
        self.model_id = model_id or name
        self.params = params or Params()
        found = price or (None if local else lookup_price(self.model_id))
        self.price_known = found is not None or local
        self.price = found or FREE
        self.capabilities = frozenset(capabilities)
        table = None if local else builtin_accepts(self.model_id)
        base = self.default_accepts if table is None else table[0]
        #: The features this model accepts (tools, images, json_schema, logprobs).
        self.accepts = (accepts.over(base) if isinstance(accepts, AcceptsConfig)
                        else base if accepts is None else frozenset(accepts))
        unknown = self.accepts - ALL_FEATURES
        if unknown:
            raise ValueError(f"accepts: unknown feature(s) {', '.join(sorted(unknown))}")
        self.context_window = context_window or (table[1] if table else None)

    #: What a model of this class accepts unless the built-in table or YAML says otherwise.
    default_accepts: frozenset[str] = ALL_FEATURES

    def check_accepts(self, request: Request) -> None:
        """Raise ``CapabilityMissing`` before a call this model cannot serve."""
        needs = request.needs
        if needs and not needs <= self.accepts:
            raise CapabilityMissing(self.name, needs - self.accepts)

    def prepare(self, request: Request) -> Request:
        """The request with this model's default parameters filling the unset ones
        (``CapabilityMissing`` when it needs what this model does not accept)."""
        self.check_accepts(request)
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
        tool_calls: tuple[ToolCall, ...] = (),
        logprobs: tuple[TokenLogprob, ...] | None = None,
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
        if tool_calls:
            span.attributes["tool_calls"] = [c.name for c in tool_calls]
        return Completion(text, self.name, usage, cost, latency, finish_reason, span, logprob,
                          tool_calls, logprobs)

    def paced(self, request: Request, events: AsyncIterator[StreamEvent], started: float
              ) -> AsyncIterator[StreamEvent]:
        """This model's stream ``events`` under its time limits; a failure after the first
        piece carries the partial answer, priced, for a fallback's rescue."""
        return paced(events, self.limits, model=self.name,
                     partial=lambda text: self.partial(request, text, started))

    def partial(self, request: Request, text: str, started: float) -> Completion:
        """The part of an answer a broken stream had sent, with estimated usage (the
        server's count never came) and its cost."""
        usage = Usage(sum(estimate_tokens(m.content) for m in request.messages),
                      estimate_tokens(text))
        return self.finish(text, usage, started, finish_reason=None,
                           attributes={"usage_estimated": True, "broken": True})

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
        "price": Price(cfg.price.input, cfg.price.output, cfg.price.cached_input,
                       cfg.price.cache_write) if cfg.price else None,
        "capabilities": cfg.capabilities,
        "context_window": cfg.context_window,
        "accepts": cfg.accepts,
        "limits": Limits(cfg.first_token_s, cfg.idle_s, cfg.total_s),
        "prefill": cfg.prefill,
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
