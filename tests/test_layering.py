"""Arrows point inward: the import rules of DESIGN.md, read from the source with ``ast``.

Imports inside ``if TYPE_CHECKING:`` blocks are left out (they never run); imports inside
functions count, since they run.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "src" / "chorus"
#: Packages that build on everything else; nothing below them may import them.
OUTER = {"gateway", "cli", "eval"}
INNER = {"core", "stores", "config", "http", "providers", "embeddings", "routing", "patterns",
         "policies"}


def _imports(path: Path) -> list[tuple[str, int]]:
    """``(module, line)`` of every ``from chorus... import`` that runs."""
    tree = ast.parse(path.read_text(), str(path))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(sub) for sub in ast.walk(node))
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
        elif isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
    return [(m, line) for m, line in found if m.split(".")[0] == "chorus"]


def _edges() -> list[tuple[str, str, str, int]]:
    """``(from package, to module, file, line)`` for every import across packages."""
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if len(rel.parts) < 2:
            continue  # chorus/__init__.py re-exports the public surface
        for module, line in _imports(path):
            parts = module.split(".")
            if len(parts) > 1 and parts[1] != rel.parts[0]:
                out.append((rel.parts[0], module, str(rel), line))
    return out


EDGES = _edges()


def test_the_source_tree_is_read() -> None:
    assert len(EDGES) > 50
    assert any(pkg == "patterns" and m.startswith("chorus.core") for pkg, m, _, _ in EDGES)


def test_core_imports_nothing_else_of_chorus() -> None:
    wrong = [f"{f}:{line} {m}" for pkg, m, f, line in EDGES if pkg == "core"]
    assert not wrong, wrong


def test_no_package_imports_another_packages_private_modules() -> None:
    wrong = [f"{f}:{line} {m}" for _, m, f, line in EDGES
             if any(p.startswith("_") for p in m.split(".")[2:])]
    assert not wrong, wrong


@pytest.mark.parametrize("inner", sorted(INNER))
def test_inner_packages_never_import_the_outer_ones(inner: str) -> None:
    wrong = [f"{f}:{line} {m}" for pkg, m, f, line in EDGES
             if pkg == inner and m.split(".")[1] in OUTER]
    assert not wrong, wrong


def test_packages_form_no_cycle() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for pkg, module, _, _ in EDGES:
        graph[pkg].add(module.split(".")[1])
    cycle = _find_cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt] if nxt in path else [*path, nxt]
            if nxt not in state:
                found = visit(nxt, [*path, nxt])
                if found:
                    return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def test_the_cycle_finder_finds_one() -> None:
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": {"c"}}) is None
