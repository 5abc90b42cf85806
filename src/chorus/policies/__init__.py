"""Policies: wrappers around one Model (cache, retry, budget, breaker, rate limit)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chorus.core.registry import Registry

__all__ = ["register"]


def register(registry: Registry) -> None:
    """Register the built-in policies (the ``chorus.plugins`` entry point)."""
    # -- cache, retry --
    from chorus.policies import cache, retry, semantic_cache

    registry.pattern("cache", cache.CacheConfig, cache.build,
                     "answer a repeated request (same model, messages, params) from a store")
    registry.pattern("semantic_cache", semantic_cache.SemanticCacheConfig, semantic_cache.build,
                     "answer a prompt close in meaning to a cached one, per tenant")
    registry.pattern("retry", retry.RetryConfig, retry.build,
                     "retry retryable errors with jittered backoff within the deadline")
    # -- budget, breaker, ratelimit --
    from chorus.policies import breaker, budget, ratelimit

    registry.pattern("budget", budget.BudgetConfig, budget.build,
                     "cap tokens and dollars per request and per key over a time window")
    registry.pattern("breaker", breaker.BreakerConfig, breaker.build,
                     "stop calling a failing model; probe it again after a cool-down")
    registry.pattern("ratelimit", ratelimit.RateLimitConfig, ratelimit.build,
                     "requests and tokens per minute, per model or key; queue or refuse")
    # -- guardrails --
    from chorus.policies import guardrails

    registry.pattern("guardrails", guardrails.GuardrailsConfig, guardrails.build,
                     "input checks, then the model, then output checks (PII, injection, ...)")
    from chorus.policies.guardrails import _config

    _config.register(registry)
