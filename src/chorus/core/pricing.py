"""Prices per million tokens, and the built-in table of common hosted models.

List prices change; the table says the date it was read. A price in the YAML config
always wins over the table. Local models cost 0 unless the user sets a price.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from chorus.core.types import Usage

__all__ = ["Price", "FREE", "PRICES_READ_ON", "BUILTIN_PRICES", "lookup_price"]


@dataclass(frozen=True, slots=True)
class Price:
    """US dollars per million input and output tokens; prompt tokens read from or written
    to the provider's prompt cache at their own prices (None: the input price)."""

    input: float = 0.0
    output: float = 0.0
    cached_input: float | None = None
    cache_write: float | None = None

    def cost(self, usage: Usage) -> float:
        read, write = usage.cached_input_tokens, usage.cache_write_tokens
        if not (read or write):
            return (usage.input_tokens * self.input + usage.output_tokens * self.output) / 1e6
        plain = usage.input_tokens - read - write
        return (plain * self.input + usage.output_tokens * self.output
                + read * (self.input if self.cached_input is None else self.cached_input)
                + write * (self.input if self.cache_write is None else self.cache_write)) / 1e6

    def estimate(self, input_tokens: int, max_output_tokens: int) -> float:
        return (input_tokens * self.input + max_output_tokens * self.output) / 1e6


FREE: Final = Price()

#: The day the list prices below were read from the providers' public price pages.
PRICES_READ_ON: Final = "2026-11-27"

BUILTIN_PRICES: Final[dict[str, Price]] = {
    # OpenAI (cached input: half the input price)
    "gpt-4o": Price(2.50, 10.00, cached_input=1.25),
    "gpt-4o-mini": Price(0.15, 0.60, cached_input=0.075),
    "gpt-4.1": Price(2.00, 8.00, cached_input=0.50),
    "gpt-4.1-mini": Price(0.40, 1.60, cached_input=0.10),
    "gpt-4.1-nano": Price(0.10, 0.40, cached_input=0.025),
    "o4-mini": Price(1.10, 4.40, cached_input=0.275),
    # Anthropic (cache reads: a tenth of the input price; 5-minute cache writes: 1.25x)
    "claude-opus-4": Price(15.00, 75.00, cached_input=1.50, cache_write=18.75),
    "claude-sonnet-4": Price(3.00, 15.00, cached_input=0.30, cache_write=3.75),
    "claude-3-5-haiku": Price(0.80, 4.00, cached_input=0.08, cache_write=1.00),
    "claude-haiku-4-5": Price(1.00, 5.00, cached_input=0.10, cache_write=1.25),
    "claude-3-haiku": Price(0.25, 1.25, cached_input=0.03, cache_write=0.30),
    # Google
    "gemini-2.5-pro": Price(1.25, 10.00),
    "gemini-2.5-flash": Price(0.30, 2.50),
    # Open models on common hosts (Together / OpenRouter list prices)
    "meta-llama/llama-3.3-70b-instruct": Price(0.88, 0.88),
    "meta-llama/llama-3.1-8b-instruct": Price(0.18, 0.18),
    "mistralai/mixtral-8x7b-instruct": Price(0.60, 0.60),
    "qwen/qwen-2.5-72b-instruct": Price(1.20, 1.20),
    "deepseek/deepseek-chat": Price(0.27, 1.10),
    "mistralai/mistral-small": Price(0.10, 0.30),
}


def lookup_price(model_id: str) -> Price | None:
    """The built-in price for a hosted model id, matching dated snapshots too
    (``claude-sonnet-4-20250514`` is ``claude-sonnet-4``)."""
    key = model_id.lower()
    if key in BUILTIN_PRICES:
        return BUILTIN_PRICES[key]
    tail = key.rsplit("/", 1)[-1]
    best: str | None = None
    for name in BUILTIN_PRICES:
        short = name.rsplit("/", 1)[-1]
        for candidate in (key, tail):
            if candidate.startswith(short + "-") or candidate == short:
                if best is None or len(name) > len(best):
                    best = name
    return BUILTIN_PRICES[best] if best else None
