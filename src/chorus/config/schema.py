"""The shapes of a config file, as pydantic models that reject unknown keys.

A file has ``models:`` (leaves, chosen by ``provider:``), ``systems:`` (anything built
from them, chosen by ``kind:``, or a plain model name) and optionally ``embedders:``
and ``default:`` (the system ``chorus run`` uses when none is named).
Wherever a pattern takes a model, a ``ModelRef`` is either the name of a model or
system, or an inline mapping.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "GatewayBudgetConfig",
    "GatewayConfig",
    "GatewayKeyConfig",
    "GatewayRateLimitConfig",
    "ModelRef",
    "Node",
    "PatternConfig",
    "PriceConfig",
    "TelemetryConfig",
    "ProviderConfig",
    "RootConfig",
]

#: A model or system name, or an inline node (a mapping with ``provider:`` or ``kind:``).
ModelRef = str | dict[str, Any]


class Node(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PriceConfig(Node):
    """US dollars per million tokens."""

    input: float = Field(0.0, ge=0)
    output: float = Field(0.0, ge=0)
    #: Prompt tokens read from the provider's prompt cache (default: the input price).
    cached_input: float | None = Field(None, ge=0)
    #: Prompt tokens written to the provider's prompt cache (default: the input price).
    cache_write: float | None = Field(None, ge=0)


class AcceptsConfig(Node):
    """Features a model accepts; an unset key keeps the built-in value."""

    tools: bool | None = None
    images: bool | None = None
    json_schema: bool | None = None
    logprobs: bool | None = None

    def over(self, base: frozenset[str]) -> frozenset[str]:
        out = set(base)
        for name, value in self.model_dump(exclude_none=True).items():
            (out.add if value else out.discard)(name)
        return frozenset(out)


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
    #: What the model accepts, over the built-in table (chorus.core.capabilities), e.g.
    #: {images: false, logprobs: true}.
    accepts: AcceptsConfig | None = None
    #: Seconds to the first piece of a streamed answer (connecting included).
    first_token_s: float | None = Field(None, gt=0)
    #: Seconds a streamed answer may go silent between two pieces.
    idle_s: float | None = Field(None, gt=0)
    #: Seconds the whole answer may take.
    total_s: float | None = Field(None, gt=0)
    #: Whether the model continues a last assistant message (default: by provider).
    prefill: bool | None = None


class PatternConfig(Node):
    """Keys every pattern accepts; each pattern adds its own."""

    kind: str
    description: str = ""


class GatewayBudgetConfig(Node):
    """What one API key may spend over a time window (shared through the gateway's store)."""

    usd: float | None = Field(None, ge=0)
    tokens: int | None = Field(None, ge=0)
    seconds: float = Field(86400.0, gt=0)


class GatewayRateLimitConfig(Node):
    """Requests and tokens per minute for one API key; over it: 429 with Retry-After."""

    requests_per_minute: float | None = Field(None, gt=0)
    tokens_per_minute: float | None = Field(None, gt=0)
    burst_s: float = Field(60.0, gt=0)


class GatewayKeyConfig(Node):
    """One API key of ``chorus serve``: stored as its sha256 (``chorus serve --hash-key``)."""

    name: str = Field(min_length=1)
    key_sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")
    #: The systems and models this key may use (``["*"]``: all of them).
    systems: list[str] = Field(default_factory=lambda: ["*"])
    budget: GatewayBudgetConfig | None = None
    rate_limit: GatewayRateLimitConfig | None = None


class GatewayConfig(Node):
    """Settings of the OpenAI-compatible gateway (``chorus serve``)."""

    #: No keys: an open gateway (a warning at start).
    keys: list[GatewayKeyConfig] = Field(default_factory=list)
    #: Log prompts and answers (never API keys). Off by default.
    log_content: bool = False
    #: The store (a name under ``stores:``) for key budgets and rate limits; share one
    #: Redis between gateway processes to hold the limits across all of them.
    store: str | None = None
    #: The embedder ``/v1/embeddings`` uses when ``model`` names none (default: minilm).
    embedder: str | None = None
    #: Deadline of one request, in seconds.
    timeout_s: float | None = Field(default=600.0, gt=0)
    #: Seconds a client may take to send a request's head (from the connection, or from
    #: the request's first byte on a kept-alive one) before a 408 and a closed connection.
    head_timeout_s: float = Field(default=10.0, gt=0)
    #: Seconds a client may take to send a request's body once the head is in (at most
    #: ``timeout_s``); past it, a 408 and a closed connection.
    body_timeout_s: float = Field(default=15.0, gt=0)

    @property
    def body_limit_s(self) -> float:
        """The seconds a body may take in effect: ``body_timeout_s``, at most
        ``timeout_s``."""
        if self.timeout_s is None:
            return self.body_timeout_s
        return min(self.body_timeout_s, self.timeout_s)


class TelemetryConfig(Node):
    """OpenTelemetry export (docs/telemetry.md); the standard ``OTEL_*`` variables win
    over what is set here."""

    #: Export spans and metrics (default: when OTEL_EXPORTER_OTLP_ENDPOINT is set or the
    #: program installed its own OpenTelemetry providers).
    enabled: bool | None = None
    #: The OTLP base URL, e.g. http://127.0.0.1:6006 (Phoenix) or :4318 (a collector).
    endpoint: str | None = None
    protocol: Literal["http/protobuf", "grpc"] | None = None
    service_name: str | None = None
    #: Headers sent with each export (an API key for a hosted backend).
    headers: dict[str, str] = Field(default_factory=dict)
    #: Record prompt and answer text on model spans (off: only sizes, models, cost).
    content: bool | None = None
    #: Export the GenAI client metrics and cost too.
    metrics: bool = True


class RootConfig(Node):
    version: int = 1
    default: str | None = None
    models: dict[str, dict[str, Any]] = Field(default_factory=dict)
    systems: dict[str, ModelRef] = Field(default_factory=dict)
    embedders: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: Named state backends for policies: ``memory``, ``{kind: sqlite, path}``,
    #: ``{kind: redis, url}``.
    stores: dict[str, Any] = Field(default_factory=dict)
    #: ``chorus serve`` settings: API keys, budgets and rate limits per key.
    gateway: GatewayConfig = Field(default_factory=lambda: GatewayConfig())
    #: OpenTelemetry export of every request's spans.
    telemetry: TelemetryConfig | None = None
