"""The shapes of a config file, as pydantic models that reject unknown keys.

A file has ``models:`` (leaves, chosen by ``provider:``), ``systems:`` (anything built
from them, chosen by ``kind:``, or a plain model name) and optionally ``embedders:``
and ``default:`` (the system ``chorus run`` uses when none is named).
Wherever a pattern takes a model, a ``ModelRef`` is either the name of a model or
system, or an inline mapping.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Node", "ModelRef", "PriceConfig", "ProviderConfig", "PatternConfig", "RootConfig"]

#: A model or system name, or an inline node (a mapping with ``provider:`` or ``kind:``).
ModelRef = str | dict[str, Any]


class Node(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PriceConfig(Node):
    """US dollars per million tokens."""

    input: float = Field(0.0, ge=0)
    output: float = Field(0.0, ge=0)


class ProviderConfig(Node):
    """Keys every leaf model accepts; each provider adds its own."""

    provider: str
    description: str = ""
    #: Default sampling parameters (temperature, max_tokens, stop, seed, top_p).
    params: dict[str, Any] = Field(default_factory=dict)
    #: Overrides the built-in price table.
    price: PriceConfig | None = None
    #: Tags for capability-aware routing, e.g. [chat, code, json].
    capabilities: list[str] = Field(default_factory=list)
    context_window: int | None = None


class PatternConfig(Node):
    """Keys every pattern accepts; each pattern adds its own."""

    kind: str
    description: str = ""


class RootConfig(Node):
    version: int = 1
    default: str | None = None
    models: dict[str, dict[str, Any]] = Field(default_factory=dict)
    systems: dict[str, ModelRef] = Field(default_factory=dict)
    embedders: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: Named state backends for policies: ``memory``, ``{kind: sqlite, path}``,
    #: ``{kind: redis, url}``.
    stores: dict[str, Any] = Field(default_factory=dict)
