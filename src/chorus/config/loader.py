"""Read YAML keeping the line of every key, and interpolate ``${ENV}`` in strings.

``${NAME}`` takes the environment variable NAME and is an error when it is unset;
``${NAME:-default}`` falls back to the default; ``$${`` writes a literal ``${``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chorus.core.errors import ConfigError

__all__ = ["Document", "load_file", "load_text", "interpolate", "yaml_problem"]

Path_ = tuple[str | int, ...]
_ENV = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(slots=True)
class Document:
    """Plain data read from YAML, plus the line (1-based) of each key path."""

    data: Any
    file: str
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, path: Path_) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), None)

    def error(self, path: Path_, message: str) -> ConfigError:
        key = ".".join(str(k) for k in path) or None
        return ConfigError(message, file=self.file, line=self.line_of(path), key=key)


class _Loader(yaml.SafeLoader):
    pass


def _construct(loader: yaml.SafeLoader, node: yaml.Node, path: Path_,
               lines: dict[Path_, int]) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, bool) and isinstance(key_node, yaml.ScalarNode):
                # YAML 1.1 reads a bare `on:`/`off:`/`yes:`/`no:` key as a bool; keep its text.
                key = key_node.value
            if not isinstance(key, str):
                key = str(key)
            if key in out:
                raise ConfigError(
                    f"key {key!r} appears twice", line=key_node.start_mark.line + 1,
                    key=".".join(str(k) for k in path + (key,)),
                )
            lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _construct(loader, value_node, path + (key,), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(loader, item, path + (i,), lines) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def interpolate(value: str, env: Mapping[str, str], where: str = "") -> str:
    def sub(m: re.Match[str]) -> str:
        if m.group(1):
            return "${" + m.group(2) + (f":-{m.group(3)}" if m.group(3) is not None else "") + "}"
        name, default = m.group(2), m.group(3)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise KeyError(name)

    return _ENV.sub(sub, value)


def _interpolate_tree(data: Any, doc: Document, path: Path_, env: Mapping[str, str]) -> Any:
    if isinstance(data, dict):
        return {k: _interpolate_tree(v, doc, path + (k,), env) for k, v in data.items()}
    if isinstance(data, list):
        return [_interpolate_tree(v, doc, path + (i,), env) for i, v in enumerate(data)]
    if isinstance(data, str) and "${" in data:
        try:
            return interpolate(data, env)
        except KeyError as exc:
            raise doc.error(
                path, f"environment variable {exc.args[0]} is not set (set it, write "
                f"${{{exc.args[0]}:-default}}, or $${{{exc.args[0]}}} for a literal "
                f"${{{exc.args[0]}}})"
            ) from None
    return data


def yaml_problem(exc: yaml.YAMLError) -> tuple[int | None, str]:
    """The line (1-based, when known) and the problem of a YAML error, on one line (the
    parser's own message spans several, with a caret under the spot)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        return (mark.line + 1 if mark else None), " ".join(problem.split())
    return None, " ".join(str(exc).split())


def load_text(text: str, file: str = "<config>",
              env: Mapping[str, str] | None = None) -> Document:
    lines: dict[Path_, int] = {}
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            data = {} if node is None else _construct(loader, node, (), lines)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        line, problem = yaml_problem(exc)
        raise ConfigError(f"invalid YAML: {problem}", file=file, line=line) from None
    except ConfigError as exc:
        raise ConfigError(exc.detail, file=file, line=exc.line, key=exc.key) from None
    doc = Document(data, file, lines)
    doc.data = _interpolate_tree(data, doc, (), os.environ if env is None else env)
    return doc


def load_file(path: str | Path, env: Mapping[str, str] | None = None) -> Document:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}") from None
    except IsADirectoryError:
        raise ConfigError(f"config path is a directory, not a file: {p}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {p}: {exc}") from None
    return load_text(text, str(p), env)
