"""The gateway's JSON writer: orjson, and the standard library for what orjson refuses.

A request may carry an integer beyond 64 bits (in a tool's JSON Schema, say) that the
answer echoes back; orjson cannot write it, the standard library can. Only a body that
orjson refuses pays for the slower writer.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["dumps"]


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:
        # ASCII with escapes: valid JSON bytes whatever the strings hold.
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()
