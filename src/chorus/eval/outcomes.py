"""Outcome tables: what each model did on each item, one JSON object per line:

    {"id": str, "prompt": str, "category": str|null, "reference": str|null,
     "outcomes": {MODEL: {"score": float|null, "cost_usd": float|null,
                          "response": str|null, "output_tokens": int|null,
                          "tool_calls": [{"id": str, "name": str, "arguments": str|object}]}}}

``tool_calls`` (optional) are the calls the model made: ``arguments`` as the JSON text the
model wrote (an object is taken as its JSON), ``id`` optional (one is made when absent).

The ``replay`` provider answers from such a table, ``chorus router fit`` learns from
one, and ``chorus bench --record`` writes one. Converters build tables from the public
MMLU-Pro outputs and the RouteLLM evaluation sets (``convert.py``).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from chorus.core.errors import ChorusError
from chorus.core.types import ToolCall
from chorus.eval.datasets import Item, json_line

__all__ = [
    "Outcome",
    "OutcomeItem",
    "read_outcomes",
    "write_outcomes",
    "models_of",
    "require_models",
    "matrices",
    "unrecorded",
    "as_items",
    "parse_outcome",
]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one model did on one item."""

    score: float | None = None
    cost_usd: float | None = None
    response: str | None = None
    output_tokens: int | None = None
    #: The tool calls the model made (its ``response`` is then often null).
    tool_calls: tuple[ToolCall, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"score": self.score, "cost_usd": self.cost_usd,
                               "response": self.response, "output_tokens": self.output_tokens}
        if self.tool_calls:
            out["tool_calls"] = [c.to_dict() for c in self.tool_calls]
        return out


@dataclass(frozen=True, slots=True)
class OutcomeItem:
    id: str
    prompt: str
    category: str | None = None
    reference: str | None = None
    outcomes: dict[str, Outcome] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "prompt": self.prompt, "category": self.category,
                "reference": self.reference,
                "outcomes": {m: o.to_dict() for m, o in self.outcomes.items()}}

    def item(self) -> Item:
        return Item(self.id, self.prompt, self.reference, self.category)


def _number(value: Any, where: str, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ChorusError(f"{where}: {key} must be a number or null, got {value!r}")
    return float(value)


_KEYS = {"score", "cost_usd", "response", "output_tokens", "tool_calls"}
_call_ids = itertools.count(1)


def _tool_calls(raw: Any, where: str) -> tuple[ToolCall, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ChorusError(f"{where}: tool_calls must be a list of {{name, arguments, id}}")
    calls = []
    for i, c in enumerate(raw):
        at = f"{where}: tool_calls[{i}]"
        if not isinstance(c, Mapping):
            raise ChorusError(f"{at}: must be an object with name, arguments and id")
        unknown = set(c) - {"id", "name", "arguments"}
        if unknown:
            raise ChorusError(f"{at}: unknown key(s) {', '.join(sorted(unknown))} (expected "
                              "name, arguments, id)")
        name, args, call_id = c.get("name"), c.get("arguments", "{}"), c.get("id")
        if not isinstance(name, str) or not name:
            raise ChorusError(f"{at}: name must be a non-empty string")
        if isinstance(args, Mapping):
            args = json.dumps(args, ensure_ascii=False)
        elif not isinstance(args, str):
            raise ChorusError(f"{at}: arguments must be an object or its JSON text")
        if call_id is not None and (not isinstance(call_id, str) or not call_id):
            raise ChorusError(f"{at}: id must be a non-empty string when given")
        calls.append(ToolCall(call_id or f"call_replay_{next(_call_ids)}", name, args))
    return tuple(calls)


def parse_outcome(raw: Any, where: str) -> Outcome:
    """One model's outcome from its JSON object; one error naming ``where`` when it is
    not one."""
    if not isinstance(raw, Mapping):
        raise ChorusError(f"{where}: each outcome must be an object with score, cost_usd, "
                          "response, output_tokens")
    unknown = set(raw) - _KEYS
    if unknown:
        raise ChorusError(f"{where}: unknown outcome key(s) {', '.join(sorted(unknown))}")
    tokens = raw.get("output_tokens")
    if tokens is not None and (isinstance(tokens, bool) or not isinstance(tokens, int)):
        raise ChorusError(f"{where}: output_tokens must be an integer or null")
    response = raw.get("response")
    if response is not None and not isinstance(response, str):
        raise ChorusError(f"{where}: response must be a string or null")
    score, cost = _number(raw.get("score"), where, "score"), _number(raw.get("cost_usd"),
                                                                      where, "cost_usd")
    if score is not None and not 0.0 <= score <= 1.0:
        raise ChorusError(f"{where}: score must lie in [0, 1] (1: right, 0: wrong; divide a "
                          f"grade by its maximum), got {score:g}")
    if cost is not None and cost < 0:
        raise ChorusError(f"{where}: cost_usd must be at least 0, got {cost:g}")
    return Outcome(score, cost, response, tokens,
                   _tool_calls(raw.get("tool_calls"), where))


def parse_row(row: Any, where: str) -> OutcomeItem:
    if not isinstance(row, Mapping):
        raise ChorusError(f"{where}: each line must be a JSON object")
    for key in ("id", "prompt", "outcomes"):
        if key not in row:
            raise ChorusError(f"{where}: missing key {key!r}")
    if not isinstance(row["outcomes"], Mapping):
        raise ChorusError(f"{where}: outcomes must map model names to outcomes")
    opt = {k: None if row.get(k) is None else str(row[k]) for k in ("category", "reference")}
    return OutcomeItem(
        str(row["id"]), str(row["prompt"]), opt["category"], opt["reference"],
        {str(m): parse_outcome(o, f"{where}: {m}") for m, o in row["outcomes"].items()},
    )


def read_outcomes(path: str | Path, *, limit: int | None = None) -> list[OutcomeItem]:
    """The rows of an outcome table (JSONL), in file order."""
    p = Path(path)
    if not p.is_file():
        raise ChorusError(f"outcome table {str(p)!r} does not exist")
    convert = (f"records with one row per item and model (model, prompt, score) become "
               f"one with `chorus outcomes convert long {p} -o TABLE.jsonl`")
    if p.suffix.lower() in (".csv", ".tsv"):
        raise ChorusError(f"{p}: an outcome table is JSONL, one item a line with every "
                          f"model's outcome in it; {convert}")
    out: list[OutcomeItem] = []
    with p.open(encoding="utf-8-sig") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            row = json_line(line, f"{p}:{n}", hint=f" (an outcome table is JSONL; {convert})"
                            if n == 1 else "")
            out.append(parse_row(row, f"{p}:{n}"))
            if limit is not None and len(out) >= limit:
                break
    return out


def write_outcomes(path: str | Path, rows: Iterable[OutcomeItem]) -> int:
    """Write rows as JSONL; returns how many."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with p.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row.to_dict(), ensure_ascii=False) + "\n")
            n += 1
    return n


def models_of(rows: Sequence[OutcomeItem]) -> list[str]:
    """Every model named in the table, in first-seen order."""
    return list(dict.fromkeys(m for r in rows for m in r.outcomes))


Matrix = npt.NDArray[np.float64]


def require_models(rows: Sequence[OutcomeItem], models: Sequence[str] | None) -> list[str]:
    """``models`` (all of the table's when None), each checked to have outcomes here."""
    known = models_of(rows)
    unknown = [m for m in models or () if m not in known]
    if unknown:
        raise ValueError(f"no outcomes recorded for {', '.join(map(repr, unknown))}; the "
                         f"table has {', '.join(known)}")
    return list(models) if models else known


def matrices(rows: Sequence[OutcomeItem], models: Sequence[str]) -> tuple[Matrix, Matrix]:
    """Scores and costs as items x models arrays; NaN where not recorded."""
    scores = np.full((len(rows), len(models)), np.nan)
    costs = np.full((len(rows), len(models)), np.nan)
    for i, row in enumerate(rows):
        for j, m in enumerate(models):
            o = row.outcomes.get(m)
            if o is not None:
                scores[i, j] = np.nan if o.score is None else o.score
                costs[i, j] = np.nan if o.cost_usd is None else o.cost_usd
    return scores, costs


def unrecorded(rows: Sequence[OutcomeItem], models: Sequence[str], *,
               no_score: str, no_cost: str) -> list[str]:
    """One line per model whose outcome, score or cost is missing on some items, saying
    how many and what is done with them (``no_score``, ``no_cost``: e.g. "counted as
    wrong"). An item without the model's outcome at all counts as neither, but as
    "no outcome"."""
    scores, costs = matrices(rows, models)
    lines = []
    for j, m in enumerate(models):
        absent = np.array([m not in r.outcomes for r in rows], dtype=bool)
        parts = []
        if (n := int(absent.sum())):
            parts.append(f"no outcome on {n} of {len(rows)} items ({no_score}; {no_cost})")
        if (n := int((np.isnan(scores[:, j]) & ~absent).sum())):
            parts.append(f"no score on {n} of {len(rows)} items ({no_score})")
        if (n := int((np.isnan(costs[:, j]) & ~absent).sum())):
            parts.append(f"no cost_usd on {n} of {len(rows)} items ({no_cost})")
        if parts:
            lines.append(f"{m}: {', '.join(parts)}")
    return lines


def as_items(rows: Sequence[OutcomeItem]) -> list[Item]:
    return [r.item() for r in rows]
