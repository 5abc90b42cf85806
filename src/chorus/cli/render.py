"""Turning completions, traces and tables into text for a terminal."""

from __future__ import annotations

import io
import json
from typing import Any

from rich.console import Console
from rich.text import Text
from rich.tree import Tree

from chorus.core.types import Completion, Span

__all__ = ["summary_line", "trace_renderable", "trace_tree"]


def _attr_lines(attributes: dict[str, Any]) -> list[str]:
    """Each decision field whole, as ``key: value`` (JSON for structures, text as is)."""
    lines = []
    for key, value in attributes.items():
        if key in ("provider", "model_id", "finish_reason"):
            continue
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                                default=str)
        lines.append(f"{key}: {text}")
    return lines


def _head(span: Span) -> str:
    head = span.name if span.kind == "model" else f"{span.name} [{span.kind}]"
    if span.kind != "model" and span.model:
        head += f" → {span.model}"
    parts = [
        head,
        f"tokens {span.usage.input_tokens}/{span.usage.output_tokens}",
        f"${span.cost_usd:.6f}",
        f"{span.latency_s:.3f}s",
    ]
    if span.error:
        parts.append(f"ERROR {span.error}")
    return "  ".join(parts)


def trace_renderable(span: Span) -> Tree:
    """The span tree for rich: a span's line, then its decision fields under it, each
    whole and wrapped to the terminal (guides kept on the wrapped lines)."""
    def label(node: Span) -> Text:
        text = Text(_head(node), style="bold" if node.kind != "model" else "")
        for line in _attr_lines(node.attributes):
            key, _, rest = line.partition(": ")
            text.append("\n")
            text.append(key + ": ", style="cyan")
            text.append(rest)
        return text

    def add(parent: Tree, node: Span) -> None:
        for child in node.children:
            add(parent.add(label(child)), child)

    root = Tree(label(span), guide_style="dim")
    add(root, span)
    return root


def trace_tree(span: Span, width: int = 100) -> str:
    """The span tree as plain text, wrapped at ``width`` columns."""
    out = io.StringIO()
    Console(file=out, width=width, no_color=True, highlight=False,
            color_system=None).print(trace_renderable(span))
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines())


def summary_line(c: Completion) -> str:
    return (
        f"model {c.model} · tokens {c.usage.input_tokens} in / {c.usage.output_tokens} out · "
        f"${c.cost_usd:.6f} · {c.latency_s:.2f}s"
    )
