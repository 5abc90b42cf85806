"""Policies: wrappers around one Model (cache, retry, budget, breaker, rate limit)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chorus.core.registry import Registry

__all__ = ["register"]


def register(registry: Registry) -> None:
    """Register the built-in policies (the ``chorus.plugins`` entry point)."""
    # -- cache, retry --
    from chorus.policies import retry

    registry.pattern("retry", retry.RetryConfig, retry.build,
                     "retry retryable errors with jittered backoff within the deadline")
