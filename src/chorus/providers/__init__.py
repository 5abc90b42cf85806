"""Leaf models: local llama.cpp, OpenAI-compatible, Anthropic, function, scripted."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chorus.providers._base import Provider
from chorus.providers.function import FunctionModel
from chorus.providers.scripted import ScriptedModel

if TYPE_CHECKING:
    from chorus.core.registry import Registry

__all__ = ["FunctionModel", "Provider", "ScriptedModel", "register"]


def register(registry: Registry) -> None:
    """Register the built-in providers (the ``chorus.plugins`` entry point)."""
    from chorus.providers import function, scripted

    registry.provider("scripted", scripted.ScriptedConfig, scripted.build,
                      "test double: replies from a queue or by regex")
    registry.provider("function", function.FunctionConfig, function.build,
                      "a Python callable")

    from chorus.providers import local

    registry.provider("local", local.LocalConfig, local.build,
                      "a GGUF model run in process by llama.cpp")

    from chorus.providers import anthropic, openai

    registry.provider("openai", openai.OpenAIConfig, openai.build,
                      "any OpenAI-compatible chat completions endpoint")
    registry.provider("anthropic", anthropic.AnthropicConfig, anthropic.build,
                      "Claude through the Anthropic Messages API")
