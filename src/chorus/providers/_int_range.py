"""Integer bounds of a JSON schema as a grammar: llama-cpp-python's schema converter
ignores ``minimum``/``maximum`` (its own TODO), so a forced tool call could write an hour
of 25 for ``{"type": "integer", "minimum": 0, "maximum": 23}``. Here the integers from
``lo`` to ``hi`` become alternatives of digit classes, length by length (the way a regex
for a number range is built), so decoding can only write one of them.

The integers the grammar allows have at most ``MAX_DIGITS`` digits, as llama.cpp's own
integer rule does; an open end stops there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["MAX_DIGITS", "int_bounds", "range_alternatives", "range_gbnf", "range_regex"]

MAX_DIGITS: Final = 15
_BIG: Final = 10**MAX_DIGITS - 1

#: One character class: its first and last character ("-" for the sign).
Atom = tuple[str, str]
Alternative = list[Atom]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


def int_bounds(schema: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """The smallest and largest integer ``schema`` allows (None: no bound), from
    ``minimum``, ``maximum`` and ``exclusiveMinimum``/``exclusiveMaximum`` (a number, or
    draft 4's boolean beside ``minimum``/``maximum``)."""
    lo = hi = None
    low, high = _number(schema.get("minimum")), _number(schema.get("maximum"))
    ex_low, ex_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if low is not None:
        lo = math.floor(low) + 1 if ex_low is True and low.is_integer() else math.ceil(low)
    if (x := _number(ex_low)) is not None:
        lo = max(lo, math.floor(x) + 1) if lo is not None else math.floor(x) + 1
    if high is not None:
        hi = math.ceil(high) - 1 if ex_high is True and high.is_integer() else math.floor(high)
    if (x := _number(ex_high)) is not None:
        hi = min(hi, math.ceil(x) - 1) if hi is not None else math.ceil(x) - 1
    return lo, hi


def _same_length(a: str, b: str) -> list[Alternative]:
    """The digit strings from ``a`` to ``b`` (of one length, ``a <= b``)."""
    if not a:
        return [[]]
    if a[0] == b[0]:
        return [[(a[0], a[0]), *rest] for rest in _same_length(a[1:], b[1:])]
    n = len(a) - 1
    if a[1:] == "0" * n and b[1:] == "9" * n:  # every tail: one class per position
        return [[(a[0], b[0]), *[("0", "9")] * n]]
    out = [[(a[0], a[0]), *rest] for rest in _same_length(a[1:], "9" * n)]
    if int(b[0]) - int(a[0]) > 1:
        out.append([(str(int(a[0]) + 1), str(int(b[0]) - 1)), *[("0", "9")] * n])
    out += [[(b[0], b[0]), *rest] for rest in _same_length("0" * n, b[1:])]
    return out


def _non_negative(lo: int, hi: int) -> list[Alternative]:
    out: list[Alternative] = []
    for digits in range(len(str(lo)), len(str(hi)) + 1):
        a = max(lo, 10 ** (digits - 1) if digits > 1 else 0)
        b = min(hi, 10**digits - 1)
        if a <= b:
            out += _same_length(str(a), str(b))
    return out


def range_alternatives(lo: int | None, hi: int | None) -> list[Alternative]:
    """The integers from ``lo`` to ``hi`` (written without leading zeros, no ``-0``)."""
    lo = -_BIG if lo is None else max(lo, -_BIG)
    hi = _BIG if hi is None else min(hi, _BIG)
    if lo > hi:
        raise ValueError(f"no integer is between minimum {lo} and maximum {hi}")
    out: list[Alternative] = []
    if lo < 0:
        out += [[("-", "-"), *alt] for alt in _non_negative(max(1, -hi), -lo)]
    if hi >= 0:
        out += _non_negative(max(lo, 0), hi)
    return out


def _render(alts: list[Alternative], one: Any, many: Any, sep: str, bar: str) -> str:
    return "(" + bar.join(sep.join(one(a) if a == b else many(a, b) for a, b in alt)
                          for alt in alts) + ")"


def range_gbnf(lo: int | None, hi: int | None) -> str:
    """The GBNF expression for the integers from ``lo`` to ``hi``."""
    return _render(range_alternatives(lo, hi), lambda c: f'"{c}"',
                   lambda a, b: f"[{a}-{b}]", " ", " | ")


def range_regex(lo: int | None, hi: int | None) -> str:
    """The same alternatives as a regular expression (for tests and checks)."""
    return _render(range_alternatives(lo, hi), lambda c: "\\-" if c == "-" else c,
                   lambda a, b: f"[{a}-{b}]", "", "|").replace("(", "(?:", 1)
