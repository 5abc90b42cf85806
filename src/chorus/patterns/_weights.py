"""Model weights learned from outcomes, and the JSON file that keeps them between runs.

The update rule is multiplicative weights (Hedge) with the reward centred on 0.5:

    w[m] <- w[m] * exp(eta * (reward - 0.5))      for the model m the outcome is about
    w    <- w * (sum before / sum after)          renormalise: the total stays the same

so a reward of 1 multiplies a weight by ``exp(eta / 2)``, a reward of 0 divides it
by the same, 0.5 leaves it alone, and the other models' weights shift in proportion
to keep the total. Weights never reach zero, so a model can always earn its way back.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["hedge_update", "load_weights", "save_weights"]

_FORMAT = "chorus-weights/1"
# Keeps a long losing streak from underflowing to 0, which no reward could undo.
_FLOOR = 1e-9


def hedge_update(
    weights: Mapping[str, float], model: str, reward: float, eta: float = 0.5
) -> dict[str, float]:
    """The weights after one outcome of ``model`` with ``reward`` in [0, 1]."""
    if model not in weights:
        raise ValueError(f"no weight for {model!r}; known: {', '.join(sorted(weights))}")
    if not 0.0 <= reward <= 1.0 or math.isnan(reward):
        raise ValueError(f"reward must be in [0, 1], got {reward!r}")
    if eta <= 0:
        raise ValueError("eta must be > 0")
    total = sum(weights.values())
    new = dict(weights)
    new[model] = max(_FLOOR, new[model] * math.exp(eta * (reward - 0.5)))
    scale = total / sum(new.values())
    return {name: max(_FLOOR, w * scale) for name, w in new.items()}


def load_weights(path: Path) -> dict[str, float] | None:
    """The weights saved in ``path``, or None when the file does not exist yet."""
    try:
        text = path.read_text("utf-8-sig")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ValueError(f"cannot read weights file {str(path)!r}: {exc}") from None
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"weights file {str(path)!r} is not JSON: {exc}") from None
    weights = data.get("weights") if isinstance(data, dict) else None
    if not isinstance(weights, dict) or not all(
        isinstance(k, str) and isinstance(v, int | float) and v > 0 for k, v in weights.items()
    ):
        raise ValueError(
            f"weights file {str(path)!r} needs {{\"weights\": {{model: positive number}}}}"
        )
    return {k: float(v) for k, v in weights.items()}


def save_weights(path: Path, weights: Mapping[str, float], **info: Any) -> None:
    """Write the weights atomically: a reader sees the old file or the new one, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"format": _FORMAT, "weights": dict(weights), **info}, indent=2)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(body + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
