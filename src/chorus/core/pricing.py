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
    """US dollars per million input and output tokens."""

    input: float = 0.0
    output: float = 0.0

    def cost(self, usage: Usage) -> float:
        return (usage.input_tokens * self.input + usage.output_tokens * self.output) / 1e6

    def estimate(self, input_tokens: int, max_output_tokens: int) -> float:
        return (input_tokens * self.input + max_output_tokens * self.output) / 1e6


FREE: Final = Price()

#: The day the list prices below were read from the providers' public price pages.
PRICES_READ_ON: Final = "2026-11-27"

BUILTIN_PRICES: Final[dict[str, Price]] = {
    # OpenAI
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "o4-mini": Price(1.10, 4.40),
    # Anthropic
    "claude-opus-4": Price(15.00, 75.00),
    "claude-sonnet-4": Price(3.00, 15.00),
    "claude-3-5-haiku": Price(0.80, 4.00),
    "claude-haiku-4-5": Price(1.00, 5.00),
    "claude-3-haiku": Price(0.25, 1.25),
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
