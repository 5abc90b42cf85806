"""One registry maps the names used in YAML to constructors, for every kind YAML can
name: providers, patterns, embedders, router classifiers, guardrail checks and stores.

Built-ins register themselves exactly as a third-party plugin does: a callable in the
``chorus.plugins`` entry point group receives the registry.

    # pyproject.toml of a plugin
    [project.entry-points."chorus.plugins"]
    mine = "my_package:register"

    def register(registry):
        registry.provider("mine", MyConfig, build_mine)

What each role's ``build`` is called with, and what it returns:

    provider    build(cfg, b) -> Model         YAML: models: {x: {provider: NAME}}
    pattern     build(cfg, b) -> Model         YAML: systems: {x: {kind: NAME}}
    embedder    build(cfg, b) -> Embedder      YAML: embedders: {x: {kind: NAME}}
    classifier  build(cfg, b, routes) -> Classifier     a router's classifier: {type: NAME}
    check       build(cfg, b) -> Check         a guardrail check: {type: NAME}
    store       build(spec) -> Store           stores: {x: {kind: NAME}} (no config class)

``cfg`` is the node validated by the kind's pydantic ``config``; ``b`` is the
``BuildContext`` (the config builder) positioned at the node, so ``b.error("...", "key")``
points at a key of it and ``b.model(ref, "key")`` builds the model it names.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from pydantic import BaseModel

from chorus.core.errors import ChorusError

if TYPE_CHECKING:
    from chorus.core.errors import ConfigError
    from chorus.core.model import Model

__all__ = ["ROLES", "BuildContext", "Kind", "Registry", "Role", "config_path", "load_plugins",
           "registry"]

Role = Literal["provider", "pattern", "embedder", "classifier", "check", "store"]
ROLES: tuple[Role, ...] = ("provider", "pattern", "embedder", "classifier", "check", "store")
BuildFn = Callable[..., Any]
M = TypeVar("M", bound=BaseModel)


class BuildContext(Protocol):
    """What a kind's ``build`` is handed (the config builder is one), positioned at the
    node being built: ``rel`` arguments are keys below that node."""

    @property
    def name(self) -> str:
        """The name of the node being built (its model or system name, or its path)."""

    @property
    def file(self) -> str:
        """The config file (relative paths in a node are relative to its folder)."""

    def error(self, message: str, *rel: str | int) -> ConfigError:
        """A ConfigError pointing at ``rel`` below the node (file, line, key)."""

    def validate(self, cls: type[M], data: Any, *rel: str | int) -> M:
        """``data`` (at ``rel``) as a ``cls``, or a ConfigError naming the wrong key."""

    def model(self, ref: str | dict[str, Any], *rel: str | int) -> Model:
        """The Model a name or an inline node (at ``rel``) stands for, built once."""

    def embedder(self, ref: str | dict[str, Any] | None = None, *rel: str | int) -> Any:
        """The embedder a name or inline node stands for (default: the local MiniLM)."""

    def store(self, ref: str | dict[str, Any] | None = None, *rel: str | int) -> Any:
        """The state store a name or inline spec stands for (default: ``memory``)."""

    def part(self, role: Role, data: Any, *rel: str | int, args: tuple[Any, ...] = ()) -> Any:
        """A part of the node chosen by its ``type:`` from the registry (a classifier,
        a check), built at ``rel`` with ``build(cfg, b, *args)``."""


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    role: Role
    #: The node's pydantic model (None for stores, which check their own spec).
    config: type[BaseModel] | None
    build: BuildFn
    summary: str = ""


class Registry:
    def __init__(self) -> None:
        self.kinds: dict[Role, dict[str, Kind]] = {role: {} for role in ROLES}

    def add(self, role: Role, name: str, config: type[BaseModel] | None, build: BuildFn,
            summary: str = "") -> None:
        """Register ``name`` for ``role`` (a later registration of the same name wins)."""
        self.kinds[role][name] = Kind(name, role, config, build, summary)

    def provider(self, name: str, config: type[BaseModel], build: BuildFn,
                 summary: str = "") -> None:
        """Register a leaf model kind, chosen in YAML by ``provider: NAME``."""
        self.add("provider", name, config, build, summary)

    def pattern(self, name: str, config: type[BaseModel], build: BuildFn,
                summary: str = "") -> None:
        """Register a composite or wrapper kind, chosen in YAML by ``kind: NAME``."""
        self.add("pattern", name, config, build, summary)

    def embedder(self, name: str, config: type[BaseModel], build: BuildFn,
                 summary: str = "") -> None:
        """Register an embedder kind, chosen in YAML by ``kind: NAME`` under ``embedders:``."""
        self.add("embedder", name, config, build, summary)

    def classifier(self, name: str, config: type[BaseModel], build: BuildFn,
                   summary: str = "") -> None:
        """Register a router classifier, chosen by ``classifier: {type: NAME}``;
        ``build(cfg, b, routes)`` gets the router's route names too."""
        self.add("classifier", name, config, build, summary)

    def check(self, name: str, config: type[BaseModel], build: BuildFn,
              summary: str = "") -> None:
        """Register a guardrail check, chosen by ``{type: NAME}`` under ``input:`` or
        ``output:``; ``config`` subclasses ``chorus.policies.guardrails.CheckConfig``."""
        self.add("check", name, config, build, summary)

    def store(self, name: str, build: Callable[[Any], Any], summary: str = "") -> None:
        """Register a state store, chosen by ``{kind: NAME, ...}``; ``build(spec)`` gets
        the whole mapping and raises ValueError naming a wrong key."""
        self.add("store", name, None, build, summary)

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
             "chorus.routing", "chorus.stores", "chorus.eval")


def config_path(b: BuildContext, value: str) -> Path:
    """A path a node names: ``~`` expanded, and a relative one taken from the folder of
    the config file (when the node came from a file)."""
    path = Path(value).expanduser()
    config_file = Path(b.file)
    if not path.is_absolute() and config_file.is_file():
        path = config_file.parent / path
    return path


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
