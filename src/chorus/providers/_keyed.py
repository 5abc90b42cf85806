"""The base of models behind a hosted HTTP API reached with a key (OpenAI-compatible,
Anthropic): what they share besides their wire formats."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from chorus.http import Endpoint, HttpClient, Transport, key_usable, resolve_api_key
from chorus.providers._base import Provider

__all__ = ["KeyedProvider"]


class KeyedProvider(Provider):
    """A model behind a hosted HTTP API reached with a key: its base URL, key (literal or
    from an environment variable read at call time), extra headers and one pooled
    client. Subclasses build the requests and read the answers."""

    def __init__(self, name: str, *, base_url: str, api_key: str | None,
                 api_key_env: str | None, headers: Mapping[str, str] | None, timeout: float,
                 transport: Transport | httpx.AsyncBaseTransport | None, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.base_url = base_url.rstrip("/")
        self.api_key, self.api_key_env = api_key, api_key_env
        self.headers = dict(headers or {})
        hint = f"check the key in {api_key_env}" if api_key_env and not api_key else \
            "check `api_key:`"
        self._http = HttpClient(timeout=timeout, transport=transport)
        self._endpoint = Endpoint(self._http, model=name, model_id=self.model_id,
                                  auth_hint=hint)

    def usable(self) -> tuple[bool, str]:
        return key_usable(self.api_key, self.api_key_env, self.base_url, model=self.name)

    def _key(self) -> str | None:
        """The API key to send now (None for a local server that needs none)."""
        return resolve_api_key(self.api_key, self.api_key_env, self.base_url, model=self.name)

    async def aclose(self) -> None:
        await self._http.aclose()
