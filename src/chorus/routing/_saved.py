"""Reading a fitted part's folder (an acceptance model, an intent head, region vote
weights): its JSON description, checked for its format, and its ``.npy`` arrays."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def read_saved(root: Path, meta_file: str, arrays: Sequence[str], fmt: str, *,
               what: str, kind: str = "") -> tuple[dict[str, Any], list[np.ndarray[Any, Any]]]:
    """``root/meta_file`` as JSON and ``root/<name>.npy`` for each of ``arrays``; a
    ValueError "``root`` is not ``what``" when either is missing or unreadable, and
    "unknown ``kind`` format" when the JSON's ``format`` is not ``fmt``."""
    try:
        meta = json.loads((root / meta_file).read_text("utf-8"))
        loaded = [np.load(root / f"{name}.npy") for name in arrays]
    except (OSError, ValueError) as exc:
        raise ValueError(f"{str(root)!r} is not {what} ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise ValueError(f"{str(root)!r}: unknown {kind + ' ' if kind else ''}format "
                         f"{found!r}")
    return meta, loaded
