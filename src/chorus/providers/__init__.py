"""Leaf models: local llama.cpp, OpenAI-compatible, Anthropic, function, scripted."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from chorus.providers._base import Provider, common_kwargs
from chorus.providers._pace import Limits
from chorus.providers.function import FunctionModel
from chorus.providers.scripted import ScriptedModel

if TYPE_CHECKING:
    from chorus.core.registry import Registry

# Imported on first use: they pull in httpx or llama.cpp.
_LAZY = {"LocalModel": "local", "OpenAIModel": "openai", "AnthropicModel": "anthropic"}

__all__ = ["AnthropicModel", "FunctionModel", "Limits", "LocalModel", "OpenAIModel",
           "Provider", "ScriptedModel", "common_kwargs", "register"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"chorus.providers.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'chorus.providers' has no attribute {name!r}")


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
