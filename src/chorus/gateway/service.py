"""What the gateway serves: the systems and models of a config, each key's view of them
(wrapped once in that key's budget and rate limit), and the embedders.

Everything is built at start-up or on first use and then cached, so a request does no
config work: resolving a name is two dict lookups.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from chorus.config.builder import Config
from chorus.config.schema import GatewayConfig
from chorus.core.capabilities import able, accepts_of
from chorus.core.errors import CapabilityMissing, ChorusError
from chorus.core.model import Model
from chorus.core.types import Request
from chorus.embeddings import Embedder
from chorus.gateway.auth import KeyInfo, KeyTable
from chorus.gateway.openai_wire import WireError
from chorus.stores import MemoryStore, Store

__all__ = ["Gateway", "WRAPPER_PREFIX"]

log = logging.getLogger("chorus.gateway")

#: The names of the per-key wrappers start with this; the decision summary skips them.
WRAPPER_PREFIX = "gateway:"


class Gateway:
    """The models a gateway serves, by name, and the per-key policies around them."""

    def __init__(
        self,
        models: Mapping[str, Model],
        *,
        settings: GatewayConfig | None = None,
        kinds: Mapping[str, str] | None = None,
        embedders: Mapping[str, Embedder] | Callable[[str], Embedder] | None = None,
        embedder_names: list[str] | None = None,
        store: Store | None = None,
        owned: list[Model] | None = None,
    ) -> None:
        self.models = dict(models)
        self.settings = settings or GatewayConfig()
        #: name -> "system" or "model" (for /v1/models).
        self.kinds = dict(kinds or dict.fromkeys(self.models, "system"))
        self.keys = KeyTable(self.settings.keys, list(self.models))
        if callable(embedders):
            self._embedder_fn: Callable[[str], Embedder] | None = embedders
            self._embedders: dict[str, Embedder] = {}
            self.embedder_names = list(embedder_names or [])
        else:
            self._embedder_fn = None
            self._embedders = dict(embedders or {})
            self.embedder_names = list(self._embedders)
        self.store = store
        self._wrapped: dict[tuple[str, str], Model] = {}
        self._owned = owned if owned is not None else list(self.models.values())
        self.metadata: dict[str, Mapping[str, Any]] = {}

    @classmethod
    def from_config(cls, cfg: Config) -> Gateway:
        """Build every system and model of ``cfg`` now (a bad config fails here, before
        anything binds a port)."""
        cfg.check()
        root = cfg.builder.root
        settings = root.gateway
        models: dict[str, Model] = {}
        kinds: dict[str, str] = {}
        for name in cfg.system_names:
            models[name], kinds[name] = cfg.get(name), "system"
        for name in cfg.model_names:
            models[name], kinds[name] = cfg.get(name), "model"
        limited = any(k.budget or k.rate_limit for k in settings.keys)
        store: Store | None = None
        if limited:
            store = cfg.builder.store(settings.store, "gateway", "store") if settings.store \
                else MemoryStore()
        names = sorted({*root.embedders, "minilm"})
        default = settings.embedder
        if default is not None and default not in names:
            raise cfg.doc.error(("gateway", "embedder"), f"unknown embedder {default!r}; "
                                f"defined: {', '.join(names)}")
        try:
            gw = cls(models, settings=settings, kinds=kinds, store=store,
                     embedders=lambda n: cfg.builder.embedder(n), embedder_names=names)
        except ValueError as exc:
            raise cfg.doc.error(("gateway", "keys"), str(exc)) from None
        return gw

    # -- per request ---------------------------------------------------------------------

    def metadata_for(self, key: KeyInfo) -> Mapping[str, Any]:
        meta = self.metadata.get(key.name)
        if meta is None:
            meta = self.metadata[key.name] = {"key": key.name, "tenant": key.name}
        return meta

    def resolve(self, name: str, key: KeyInfo) -> Model:
        """The model ``key`` gets for ``name``: 404 when unknown, 403 when not allowed."""
        wrapped = self._wrapped.get((key.name, name))
        if wrapped is not None:
            return wrapped
        model = self.models.get(name)
        if model is None:
            raise WireError(404, f"the model {name!r} does not exist; GET /v1/models lists "
                            "the systems and models served", param="model",
                            code="model_not_found")
        if not key.may_use(name):
            raise WireError(403, f"this API key may not use {name!r}", param="model",
                            type="permission_error", code="model_not_allowed")
        wrapped = self._wrap(key, model) if key.limited else model
        self._wrapped[(key.name, name)] = wrapped
        return wrapped

    def check_accepts(self, name: str, model: Model, request: Request) -> None:
        """A 400 (``CapabilityMissing``) before any call when ``request`` needs what no
        model of system ``name`` accepts, naming the systems that would."""
        needs = request.needs
        if needs:
            lack = needs - accepts_of(model)
            if lack:
                raise CapabilityMissing(name, lack, able(self.models.items(), needs))

    def _wrap(self, key: KeyInfo, model: Model) -> Model:
        # The policies a key's limits need, made once per (key, model). Their store keys
        # depend on the key name only, so one budget and one rate limit hold across every
        # system the key calls, and across processes sharing a Redis store.
        from chorus.policies.budget import Budget, Window
        from chorus.policies.ratelimit import RateLimit

        name = WRAPPER_PREFIX + key.name
        out = model
        if key.budget is not None:
            b = key.budget
            out = Budget(name, out, window=Window(b.tokens, b.usd, per="key",
                                                  seconds=b.seconds),
                         store=self.store, on_store_error="closed")
        if key.rate_limit is not None:
            r = key.rate_limit
            limiter = RateLimit(name, out, requests_per_minute=r.requests_per_minute,
                                tokens_per_minute=r.tokens_per_minute, per="key",
                                on_limit="refuse", burst_s=r.burst_s, store=self.store)
            limiter.key_prefix = "chorus:ratelimit:gateway:"
            out = limiter
        return out

    def embedder(self, name: str) -> Embedder:
        found = self._embedders.get(name)
        if found is not None:
            return found
        if self._embedder_fn is None or name not in self.embedder_names:
            known = ", ".join(self.embedder_names) or "none"
            raise WireError(404, f"the embedding model {name!r} does not exist; "
                            f"served: {known}", param="model", code="model_not_found")
        emb = self._embedders[name] = self._embedder_fn(name)
        return emb

    def listed(self, key: KeyInfo) -> list[tuple[str, str, str]]:
        """(name, type, kind) of what ``key`` may use, systems first."""
        out = [(n, self.kinds.get(n, "system"), m.kind) for n, m in self.models.items()
               if key.may_use(n)]
        out.sort(key=lambda t: t[1] != "system")
        out += [(n, "embedder", "embedder") for n in self.embedder_names]
        return out

    async def aclose(self) -> None:
        """Close every model and store once (wrappers share them, so they are not closed)."""
        for model in self._owned:
            try:
                await model.aclose()
            except ChorusError as exc:
                log.warning("closing %s failed: %s", model.name, exc)
        for emb in self._embedders.values():
            await emb.aclose()
        if self.store is not None:
            await self.store.aclose()
