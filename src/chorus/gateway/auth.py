"""API keys of the gateway: stored as sha256 hex, each with the systems it may use.

No keys configured means an open gateway: every request is the tenant ``anonymous``.
A key itself is never kept, logged or echoed; only its name travels with a request
(``request.metadata["key"]`` and ``["tenant"]``), which is what budgets, rate limits
and caches key on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chorus.config.schema import GatewayBudgetConfig, GatewayKeyConfig, GatewayRateLimitConfig
from chorus.gateway.openai_wire import WireError

__all__ = ["ANONYMOUS", "KeyInfo", "KeyTable", "bearer", "hash_key"]


def hash_key(key: str) -> str:
    """The sha256 hex of an API key: what ``gateway.keys[].key_sha256`` holds."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class KeyInfo:
    name: str
    #: Names this key may use; None: every system and model.
    allowed: frozenset[str] | None = None
    budget: GatewayBudgetConfig | None = None
    rate_limit: GatewayRateLimitConfig | None = None

    def may_use(self, name: str) -> bool:
        return self.allowed is None or name in self.allowed

    @property
    def limited(self) -> bool:
        return self.budget is not None or self.rate_limit is not None


ANONYMOUS = KeyInfo("anonymous")


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class KeyTable:
    """Looks a presented key up by its hash."""

    def __init__(self, keys: Iterable[GatewayKeyConfig], names: Sequence[str]) -> None:
        self._by_hash: dict[str, KeyInfo] = {}
        known = set(names)
        for k in keys:
            digest = k.key_sha256.lower()
            if digest in self._by_hash:
                raise ValueError(f"gateway key {k.name!r}: the same key_sha256 is listed twice")
            allowed = None if "*" in k.systems else frozenset(k.systems)
            unknown = sorted((allowed or frozenset()) - known)
            if unknown:
                raise ValueError(f"gateway key {k.name!r} names unknown system(s): "
                                 f"{', '.join(unknown)}")
            self._by_hash[digest] = KeyInfo(k.name, allowed, k.budget, k.rate_limit)

    @property
    def open(self) -> bool:
        """No keys configured: anyone may call."""
        return not self._by_hash

    def infos(self) -> list[KeyInfo]:
        return list(self._by_hash.values())

    def check(self, authorization: str | None) -> KeyInfo:
        """The key presented in ``authorization``; a 401 WireError when missing or wrong."""
        if self.open:
            return ANONYMOUS
        token = bearer(authorization)
        if token is None:
            raise WireError(401, "missing API key: send 'Authorization: Bearer KEY'",
                            code="missing_api_key")
        info = self._by_hash.get(hash_key(token))
        if info is None:
            raise WireError(401, "invalid API key", code="invalid_api_key")
        return info
