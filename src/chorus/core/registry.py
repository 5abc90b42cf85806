"""One registry maps the ``provider:`` and ``kind:`` names used in YAML to constructors.

Built-in providers and patterns register themselves exactly as a third-party plugin
would: a callable in the ``chorus.plugins`` entry point group receives the registry.

    # pyproject.toml of a plugin
    [project.entry-points."chorus.plugins"]
    mine = "my_package:register"

    def register(registry):
        registry.provider("mine", MyConfig, build_mine)
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from chorus.core.errors import ChorusError

if TYPE_CHECKING:
    from chorus.config.builder import Builder

__all__ = ["Kind", "Registry", "registry", "load_plugins"]

Role = Literal["provider", "pattern", "embedder"]
BuildFn = Callable[[Any, "Builder"], Any]


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    role: Role
    config: type[BaseModel]
    build: BuildFn
    summary: str = ""


class Registry:
    def __init__(self) -> None:
        self.kinds: dict[Role, dict[str, Kind]] = {"provider": {}, "pattern": {}, "embedder": {}}

    def provider(self, name: str, config: type[BaseModel], build: BuildFn,
                 summary: str = "") -> None:
        """Register a leaf model kind, chosen in YAML by ``provider: NAME``."""
        self.kinds["provider"][name] = Kind(name, "provider", config, build, summary)

    def pattern(self, name: str, config: type[BaseModel], build: BuildFn,
                summary: str = "") -> None:
        """Register a composite or wrapper kind, chosen in YAML by ``kind: NAME``."""
        self.kinds["pattern"][name] = Kind(name, "pattern", config, build, summary)

    def embedder(self, name: str, config: type[BaseModel], build: BuildFn,
                 summary: str = "") -> None:
        """Register an embedder kind, chosen in YAML by ``kind: NAME`` under ``embedders:``."""
        self.kinds["embedder"][name] = Kind(name, "embedder", config, build, summary)

    def get(self, role: Role, name: str) -> Kind | None:
        load_plugins()
        return self.kinds[role].get(name)

    def names(self, role: Role) -> list[str]:
        load_plugins()
        return sorted(self.kinds[role])


registry = Registry()
_loaded = False
#: The built-in plugins, as listed under ``chorus.plugins`` in chorus's pyproject.toml.
_BUILTINS = ("chorus.providers", "chorus.patterns", "chorus.embeddings", "chorus.policies",
             "chorus.eval")


def load_plugins() -> None:
    """Call every ``chorus.plugins`` entry point once (built-ins included)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    eps = importlib.metadata.entry_points(group="chorus.plugins")
    listed = {ep.value.partition(":")[0] for ep in eps}
    for module in _BUILTINS:
        # A source tree never installed, or installed before this built-in was added.
        if module not in listed:
            importlib.import_module(module).register(registry)
    for ep in eps:
        try:
            ep.load()(registry)
        except ImportError as exc:
            raise ChorusError(f"plugin {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
