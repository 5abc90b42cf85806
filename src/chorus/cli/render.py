"""Turning completions, traces and tables into text for a terminal."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from chorus.core.types import Completion, Span

__all__ = ["trace_tree", "summary_line", "table"]

_MAX_ATTR = 160


def _attr_text(attributes: dict[str, Any]) -> str:
    shown = []
    for key, value in attributes.items():
        if key in ("provider", "model_id", "finish_reason"):
            continue
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        if len(text) > _MAX_ATTR:
            text = text[: _MAX_ATTR - 1] + "…"
        shown.append(f"{key}={text}")
    return "  ".join(shown)


def _span_line(span: Span) -> str:
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
    line = "  ".join(parts)
    attrs = _attr_text(span.attributes)
    return f"{line}  {attrs}" if attrs else line


def trace_tree(span: Span) -> str:
    """The span tree as indented lines, one span a line."""
    lines = [_span_line(span)]

    def walk(node: Span, prefix: str) -> None:
        for i, child in enumerate(node.children):
            last = i == len(node.children) - 1
            lines.append(f"{prefix}{'└─ ' if last else '├─ '}{_span_line(child)}")
            walk(child, prefix + ("   " if last else "│  "))

    walk(span, "")
    return "\n".join(lines)


def summary_line(c: Completion) -> str:
    return (
        f"model {c.model} · tokens {c.usage.input_tokens} in / {c.usage.output_tokens} out · "
        f"${c.cost_usd:.6f} · {c.latency_s:.2f}s"
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[str(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    out = []
    for n, row in enumerate(cells):
        out.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)
