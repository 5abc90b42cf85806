"""Configs and inputs the batch tests share."""

from __future__ import annotations

import json
from pathlib import Path

# Each call costs 10 + 5 tokens at $1000 per million: $0.015.
CONFIG = """\
models:
  slow:
    provider: scripted
    default: "ok"
    latency_s: {latency}
    usage: {{input_tokens: 10, output_tokens: 5}}
    price: {{input: 1000, output: 1000}}
    params: {{max_tokens: {max_tokens}}}
  flaky:
    provider: scripted
    default: "ok"
    fail_with: server_error
    fail_times: 3
systems:
  job: slow
"""


def write_config(folder: Path, latency: float = 0.0, max_tokens: int = 512) -> Path:
    path = folder / "cfg.yaml"
    path.write_text(CONFIG.format(latency=latency, max_tokens=max_tokens))
    return path


def write_items(path: Path, n: int, start: int = 0) -> Path:
    with path.open("w") as f:
        for i in range(start, start + n):
            f.write(json.dumps({"id": f"item-{i}", "prompt": f"question {i}"}) + "\n")
    return path


def records(path: Path) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
