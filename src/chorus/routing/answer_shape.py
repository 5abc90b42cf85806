"""What an answer's text says about whether it is right, before anyone grades it.

A cheap model's answer carries signs of its own failure: it runs long, it never states a
final answer, its worked arithmetic does not add up. These are features of the text
alone, so a learned acceptance check reads them live exactly as ``chorus tune`` reads
them from recorded responses; the check's weights (fitted per table) decide how much
each one counts for a given task.

- ``log_chars``: log(1 + characters).
- ``no_final``: no explicit final answer (``#### x``, ``answer is x``, ``\\boxed{x}``,
  ``Answer: x``).
- ``fractional_final``: the final answer is a number with a fractional part.
- ``arith_checked``: how many worked steps ``<expression> = <number>`` could be
  checked (log(1 + n)).
- ``arith_wrong``: the share of those that do not hold (0 when none was checked).
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable

__all__ = ["SHAPE_FEATURES", "shape_features", "arithmetic_steps", "final_answer"]

SHAPE_FEATURES = ("shape:log_chars", "shape:no_final", "shape:fractional_final",
                  "shape:arith_checked", "shape:arith_wrong")

_FINAL = re.compile(r"####\s*([^\n]+)|\\boxed\{([^{}]+)\}|answer(?: is|:)\s*:?\s*([^\n]+)",
                    re.IGNORECASE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
# "<expression> = <result>": the expression is a run of numbers, operators, parentheses
# and blanks (a leading $ or a trailing % stays part of a number); GSM8K-style
# calculator notes "<<12*3=36>>" are read the same way.
_STEP = re.compile(r"((?:[\d.,$%()]|[-+*/x×÷^]|[ \t])+?)=\s*\$?((?:-?\d[\d,]*(?:\.\d+)?)"
                   r"(?:\s*/\s*\d+)?)")
_OPS: dict[type[ast.AST], Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Pow: operator.pow}


def _value(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_value(node.operand)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > 12:
            raise ValueError("exponent too large")
        return _OPS[type(node.op)](left, right)
    raise ValueError("not arithmetic")


def _evaluate(text: str) -> float | None:
    """The value of a plain arithmetic expression (x, × and ÷ as operators, $ and
    thousands separators dropped, n% as n/100), or None when it is not one."""
    expr = (text.replace("$", "").replace("×", "*").replace("÷", "/").replace("^", "**")
            .replace(",", "").strip())
    expr = re.sub(r"(?<=[\d)\s])x(?=[\s\d(])", "*", expr)
    expr = re.sub(r"(\d+(?:\.\d+)?)%", r"(\1/100)", expr)
    if not expr or not re.search(r"\d", expr):
        return None
    try:
        return _value(ast.parse(expr, mode="eval").body)
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError, RecursionError):
        return None


def arithmetic_steps(text: str) -> tuple[int, int]:
    """(checked, wrong): the worked steps ``<expression> = <number>`` in ``text`` that
    hold an operator, and how many of them do not hold (to 1 % or 0.01)."""
    checked = wrong = 0
    for m in _STEP.finditer(text):
        lhs = m.group(1).strip().lstrip(")").strip()
        # The expression starts at its first number or parenthesis.
        start = re.search(r"[\d($(-]", lhs)
        if start is None or re.search(r"[-+*/×÷^]|x", lhs[:start.start()]):
            continue  # no number, or its left operand lies before the match
        lhs = lhs[start.start():]
        if not re.search(r"[\d%)]\s*(?:[-+*/×÷^]|x)\s*[\d($(]", lhs):
            continue  # a bare number: "= 5" restates, it does not compute
        got, said = _evaluate(lhs), _evaluate(m.group(2))
        if got is None or said is None:
            continue
        checked += 1
        if not math.isclose(got, said, rel_tol=0.01, abs_tol=0.01):
            wrong += 1
    return checked, wrong


def final_answer(text: str) -> str | None:
    """The last explicitly stated final answer in ``text``, if any."""
    found = None
    for m in _FINAL.finditer(text):
        found = next(g for g in m.groups() if g is not None).strip()
    return found or None


def shape_features(text: str | None) -> list[float]:
    """The ``SHAPE_FEATURES`` of an answer's text (an empty answer: all zeros but
    ``no_final``)."""
    text = text or ""
    final = final_answer(text)
    # _NUMBER's match is always a valid float once its thousands separators are gone.
    number = _NUMBER.search(final) if final else None
    fractional = float(number is not None
                       and float(number.group().replace(",", "")) % 1 != 0)
    checked, wrong = arithmetic_steps(text)
    return [math.log1p(len(text)), 0.0 if final else 1.0, fractional,
            math.log1p(checked), wrong / checked if checked else 0.0]
