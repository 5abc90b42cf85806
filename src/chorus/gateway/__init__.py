"""The OpenAI-compatible gateway: every system of a config over HTTP (``chorus serve``)."""

from __future__ import annotations

from chorus.gateway.app import create_app
from chorus.gateway.auth import hash_key
from chorus.gateway.service import Gateway

__all__ = ["Gateway", "create_app", "hash_key"]
