"""Turn a config document into a tree of Models, with errors that say file, line and key."""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from chorus.config.loader import Document, Path_, load_file, load_text
from chorus.config.schema import ModelRef, RootConfig
from chorus.core.errors import ChorusError, ConfigError, UnknownName
from chorus.core.model import Model
from chorus.core.registry import Role, registry

__all__ = ["Builder", "Config", "DEFAULT_CONFIG_NAME", "LISTED"]

DEFAULT_CONFIG_NAME = "<default config>"
M = TypeVar("M", bound=BaseModel)

#: The most names an unknown-name error lists.
#: How many names a one-line message lists before "and N more".
LISTED = 12


def _field_names(cls: type[BaseModel], seen: set[type] | None = None) -> set[str]:
    seen = seen or set()
    if cls in seen:
        return set()
    seen.add(cls)
    names = set()
    for fname, info in cls.model_fields.items():
        names.add(info.alias or fname)
        ann = info.annotation
        for arg in (ann, *getattr(ann, "__args__", ())):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                names |= _field_names(arg, seen)
    return names


def closest_key(key: str, known: Sequence[str]) -> str | None:
    """The known key ``key`` is most likely a misspelling of: the same letters in another
    order (``modle`` -> ``model``, not ``mode``) first, then the closest by difflib."""
    swapped = [k for k in known if len(k) == len(key) and sorted(k) == sorted(key)]
    if swapped:
        return swapped[0]
    close = difflib.get_close_matches(key, known, n=1)
    return close[0] if close else None


def validation_error(doc: Document, path: Path_, exc: ValidationError,
                     cls: type[BaseModel]) -> ConfigError:
    """The first problem pydantic found, as one line pointing at the key."""
    errors = exc.errors()
    # A misspelt key also makes the key it was meant to be "missing": name the misspelling.
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    where = path + loc
    kind = err["type"]
    last = str(loc[-1]) if loc else ""
    if kind == "extra_forbidden":
        missing = [str(e["loc"][-1]) for e in errors
                   if e["type"] == "missing" and tuple(e["loc"][:-1]) == loc[:-1]]
        close = closest_key(last, missing) or closest_key(last, sorted(_field_names(cls)))
        hint = ""
        if close is not None:
            lacking = f" the required key {close!r} is missing" if close in missing else ""
            hint = f" (did you mean {close!r}?{lacking})"
        return doc.error(where, f"unknown key {last!r}{hint}")
    if kind == "missing":
        return doc.error(where, f"missing required key {last!r}")
    value = err.get("input")
    shown = f" (got {value!r})" if value is not None and not isinstance(value, dict | list) else ""
    return doc.error(where, f"{err['msg']}{shown}")


class Builder:
    """Builds Models from config nodes; what a kind's ``build`` function is handed."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        try:
            self.root = RootConfig.model_validate(doc.data if doc.data is not None else {})
        except ValidationError as exc:
            raise validation_error(doc, (), exc, RootConfig) from None
        both = set(self.root.models) & set(self.root.systems)
        if both:
            name = sorted(both)[0]
            raise doc.error(("systems", name), f"{name!r} is both a model and a system")
        self._built: dict[str, Model] = {}
        self._building: list[str] = []
        self._path: Path_ = ()
        self._name = ""
        self._embedders: dict[str, Any] = {}
        self._stores: dict[str, Any] = {}

    # -- what build functions use --------------------------------------------------

    @property
    def name(self) -> str:
        """The name of the node being built (its model or system name, or its path)."""
        return self._name

    @property
    def path(self) -> Path_:
        return self._path

    @property
    def file(self) -> str:
        """The config file (relative paths in a node are relative to its folder)."""
        return self.doc.file

    def error(self, message: str, *rel: str | int) -> ConfigError:
        """A ConfigError pointing at ``rel`` below the node being built."""
        return self.doc.error(self._path + rel, message)

    def validate(self, cls: type[M], data: Any, *rel: str | int) -> M:
        """``data`` (found at ``rel`` below this node) as a ``cls``; a ConfigError naming
        the first wrong key otherwise."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise validation_error(self.doc, self._path + rel, exc, cls) from None

    def part(self, role: Role, data: Any, *rel: str | int, args: tuple[Any, ...] = ()) -> Any:
        """A part of this node chosen by its ``type:`` from the registry (a router's
        classifier, a guardrail check), built at ``rel`` with ``build(cfg, self, *args)``."""
        name = data.get("type") if isinstance(data, dict) else None
        if not isinstance(data, dict):
            raise self.error(f"expected a mapping with 'type:', got {type(data).__name__}", *rel)
        kind = registry.get(role, name) if isinstance(name, str) else None
        if kind is None:
            known = registry.names(role)
            close = difflib.get_close_matches(str(name), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise self.error(f"unknown {role} type {name!r}{hint}; known: {', '.join(known)}",
                             *rel, "type")
        cfg = self.validate(kind.config, data, *rel) if kind.config is not None else data
        with self._at(self._path + rel, self._name):
            try:
                return kind.build(cfg, self, *args)
            except ConfigError:
                raise
            except (ValueError, TypeError) as exc:
                raise self.error(str(exc)) from exc

    def model(self, ref: ModelRef, *rel: str | int) -> Model:
        """Build the Model that ``ref`` (found at ``rel`` below this node) stands for."""
        if isinstance(ref, str):
            return self.named(ref, self._path + rel)
        if isinstance(ref, dict):
            where = self._path + rel
            name = ".".join(str(p) for p in where[1:]) or self._name
            return self._node(ref, where, name)
        raise self.error(f"expected a model name or a mapping, got {type(ref).__name__}", *rel)

    def embedder(self, ref: str | dict[str, Any] | None = None, *rel: str | int) -> Any:
        """The embedder that ``ref`` names (default: the built-in local MiniLM)."""
        ref = ref or "minilm"
        if isinstance(ref, str):
            if ref in self._embedders:
                return self._embedders[ref]
            where: Path_
            if ref in self.root.embedders:
                data, where = self.root.embedders[ref], ("embedders", ref)
            elif ref == "minilm":
                data, where = {"kind": "minilm"}, self._path + rel
            else:
                known = ", ".join(sorted({*self.root.embedders, "minilm"}))
                raise UnknownName(f"unknown embedder {ref!r} (defined: {known})",
                                  file=self.doc.file, line=self.doc.line_of(self._path + rel))
            emb = self._validated_build("embedder", data, where, ref)
            self._embedders[ref] = emb
            return emb
        return self._validated_build("embedder", ref, self._path + rel, self._name)

    def store(self, ref: str | dict[str, Any] | None = None, *rel: str | int) -> Any:
        """The state store ``ref`` names: a name under ``stores:``, ``memory`` (the
        default, one per config), or an inline spec. One instance per name."""
        from chorus.stores import open_store

        ref = ref or "memory"
        key = ref if isinstance(ref, str) else repr(sorted(ref.items()))
        if key in self._stores:
            return self._stores[key]
        spec: Any = ref
        if isinstance(ref, str) and ref in self.root.stores:
            spec = self.root.stores[ref]
        try:
            store = open_store(spec)
        except (ValueError, TypeError) as exc:
            raise self.error(str(exc), *rel) from None
        self._stores[key] = store
        return store

    # -- names -----------------------------------------------------------------------

    def names(self) -> tuple[list[str], list[str]]:
        return list(self.root.models), list(self.root.systems)

    def named(self, name: str, where: Path_ = ()) -> Model:
        if name in self._built:
            return self._built[name]
        if name in self._building:
            cycle = " -> ".join([*self._building[self._building.index(name):], name])
            raise self.doc.error(where, f"reference cycle: {cycle}")
        node: ModelRef
        path: Path_
        if name in self.root.models:
            node, path = self.root.models[name], ("models", name)
        elif name in self.root.systems:
            node, path = self.root.systems[name], ("systems", name)
        else:
            models, systems = self.names()
            close = difflib.get_close_matches(name, models + systems, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            every = sorted(models + systems)
            defined = ", ".join(every[:LISTED]) or "none"
            if len(every) > LISTED:  # a tuned config holds dozens: one line stays readable
                defined += (f", and {len(every) - LISTED} more (`chorus models -c FILE` and "
                            "`chorus systems -c FILE` list them)")
            raise UnknownName(
                f"unknown model or system {name!r}{hint}; defined: {defined}",
                file=self.doc.file, line=self.doc.line_of(where) if where else None,
            )
        self._building.append(name)
        try:
            if isinstance(node, str):
                model = self.named(node, path)
            else:
                model = self._node(node, path, name)
        finally:
            self._building.pop()
        self._built[name] = model
        return model

    # -- internals -------------------------------------------------------------------

    def _node(self, data: dict[str, Any], where: Path_, name: str) -> Model:
        if "provider" in data:
            return self._validated_build("provider", data, where, name)  # type: ignore[no-any-return]
        if "kind" in data:
            return self._validated_build("pattern", data, where, name)  # type: ignore[no-any-return]
        if set(data) == {"model"}:
            with self._at(where, name):
                return self.model(data["model"], "model")
        raise self.doc.error(
            where, "needs 'provider:' (a model), 'kind:' (a pattern) or 'model:' (a name)"
        )

    @contextlib.contextmanager
    def _at(self, where: Path_, name: str) -> Iterator[None]:
        saved = self._path, self._name
        self._path, self._name = where, name
        try:
            yield
        finally:
            self._path, self._name = saved

    def _validated_build(self, role: Role, data: dict[str, Any], where: Path_, name: str) -> Any:
        selector = "provider" if role == "provider" else "kind"
        kind_name = data.get(selector)
        kind = registry.get(role, kind_name) if isinstance(kind_name, str) else None
        if kind is None:
            known = ", ".join(registry.names(role))
            close = difflib.get_close_matches(str(kind_name), registry.names(role), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise self.doc.error(
                where + (selector,), f"unknown {role} {kind_name!r}{hint}; known: {known}"
            )
        if kind.config is None:
            raise self.doc.error(where, f"{role} {kind_name!r} was registered without a config")
        try:
            cfg = kind.config.model_validate(data)
        except ValidationError as exc:
            raise validation_error(self.doc, where, exc, kind.config) from None
        with self._at(where, name):
            try:
                built = kind.build(cfg, self)
                description = getattr(cfg, "description", "")
                if description and not getattr(built, "description", ""):
                    built.description = description
                return built
            except ConfigError:
                raise
            except ChorusError as exc:
                raise self.doc.error(where, str(exc)) from exc
            except (ValueError, TypeError) as exc:
                raise self.doc.error(where, str(exc)) from exc


class Config:
    """A loaded config file: its systems and models, built on first use."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.builder = Builder(doc)
        self._telemetry()

    def _telemetry(self) -> None:
        # The OTEL_* variables, or this file's telemetry: block, switch export on.
        from chorus.telemetry import auto

        block = self.builder.root.telemetry
        options = block.model_dump() if block is not None else {}
        try:
            auto(**options)
        except ChorusError as exc:
            if block is None:
                raise
            raise self.doc.error(("telemetry",), str(exc)) from None

    @classmethod
    def load(cls, path: str | Path | None = None) -> Config:
        """Load ``path``; with none, the embedded default config."""
        if path is None:
            return cls.default()
        return cls(load_file(path))

    @classmethod
    def from_text(cls, text: str, file: str = "<config>") -> Config:
        return cls(load_text(text, file))

    @classmethod
    def default(cls) -> Config:
        text = resources.files("chorus.config").joinpath("default.yaml").read_text("utf-8")
        return cls(load_text(text, DEFAULT_CONFIG_NAME))

    @property
    def file(self) -> str:
        return self.doc.file

    @property
    def model_names(self) -> list[str]:
        return list(self.builder.root.models)

    @property
    def system_names(self) -> list[str]:
        return list(self.builder.root.systems)

    @property
    def default_system(self) -> str:
        root = self.builder.root
        if root.default:
            return root.default
        if root.systems:
            return next(iter(root.systems))
        if root.models:
            return next(iter(root.models))
        raise ConfigError("the config defines no models or systems", file=self.file)

    def get(self, name: str | None = None) -> Model:
        """The system or model called ``name`` (the default system when None)."""
        return self.builder.named(name or self.default_system)

    def check(self) -> list[str]:
        """Build every model and system (nothing is loaded or called); return names."""
        names = self.model_names + self.system_names
        for n in names:
            self.builder.named(n)
        if self.builder.root.default:
            self.builder.named(self.builder.root.default, ("default",))
        return names
