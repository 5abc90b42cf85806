"""chorus: multi-model LLM systems from small composable parts.

    import chorus
    model = chorus.load().get("single")
    print(chorus.run_sync(model.complete(chorus.Request.of("Capital of France?"))).text)
"""

from __future__ import annotations

from pathlib import Path

from chorus.config import Config
from chorus.core import *  # noqa: F403
from chorus.core import __all__ as _core_all
from chorus.providers import FunctionModel, Provider, ScriptedModel

__version__ = "0.1.0"

__all__ = [
    "Config",
    "FunctionModel",
    "Provider",
    "ScriptedModel",
    "load",
    *_core_all,
]


def load(path: str | Path | None = None) -> Config:
    """Load a config file (the embedded default config when ``path`` is None)."""
    return Config.load(path)
