"""An outcome table from your own records, one row per (item, model): the long shape a
log or a spreadsheet has, where the outcome table has one line per item.

    model,prompt,score,cost_usd
    gpt-4o,What is 2+2?,1,0.0012
    llama-8b,What is 2+2?,0,0.0001

CSV, TSV or JSONL. Columns: ``model``, ``prompt`` and ``score`` (a number in [0, 1], or
true/false, yes/no, right/wrong; blank: not scored) are needed; ``id`` names the item
(else its prompt does), and ``cost_usd`` (or ``cost``), ``response``, ``output_tokens``,
``reference`` and ``category`` are kept when given. Other columns are left out, and
``long_outcomes`` says which.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from chorus.core.errors import ChorusError
from chorus.eval.datasets import csv_rows, jsonl_rows
from chorus.eval.outcomes import OutcomeItem, parse_outcome

__all__ = ["long_outcomes", "COLUMNS"]

#: Every column read; the first three are needed.
COLUMNS = ("model", "prompt", "score", "id", "cost_usd", "cost", "response",
           "output_tokens", "reference", "category")

_WORDS = {"true": 1.0, "false": 0.0, "yes": 1.0, "no": 0.0, "right": 1.0, "wrong": 0.0,
          "correct": 1.0, "incorrect": 0.0, "pass": 1.0, "fail": 0.0}


def _rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    if path.suffix.lower() in (".csv", ".tsv"):
        for at, cells in csv_rows(path):
            yield f"{path}:{at}", {k: v for k, v in cells.items() if k is not None}
        return
    for n, row in jsonl_rows(path, hint=" (a .csv, .tsv or JSONL file with one row per "
                             "item and model)"):
        if not isinstance(row, Mapping):
            raise ChorusError(f"{path}:{n}: each line must be a JSON object")
        yield f"{path}:{n}", dict(row)


def _number(value: Any, where: str, key: str, words: bool = False) -> Any:
    """A CSV cell as JSON would hold it: blank -> None, a number's text -> the number."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return None
    if words and text.lower() in _WORDS:
        return _WORDS[text.lower()]
    try:
        number = float(text)
    except ValueError:
        also = " in [0, 1], or true/false, yes/no, right/wrong" if words else ""
        raise ChorusError(f"{where}: {key} must be a number{also}, got {value!r}") from None
    if key == "output_tokens" and number.is_integer():
        return int(number)
    return number


def _score(value: Any, where: str) -> Any:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        return _number(value, where, "score", words=True)
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def long_outcomes(path: str | Path) -> tuple[list[OutcomeItem], list[str]]:
    """The outcome table in a long file, items in first-seen order, and the columns it
    left out. One clear error, naming the line, for a missing column, a bad score, an item
    whose prompt changes, or a model recorded twice for one item."""
    p = Path(path)
    if not p.is_file():
        raise ChorusError(f"{str(p)!r} {'is a folder' if p.is_dir() else 'does not exist'}; "
                          "give the file of records, one row per item and model")
    items: dict[str, dict[str, Any]] = {}
    seen: dict[tuple[str, str], str] = {}
    ignored: dict[str, None] = {}
    for where, row in _rows(p):
        for key in ("model", "prompt", "score"):
            if key not in row:
                raise ChorusError(f"{where}: needs a {key!r} column (has: "
                                  f"{', '.join(row) or 'none'}); one row per item and model")
        ignored.update((k, None) for k in row if k not in COLUMNS)
        model, prompt = str(row["model"] or "").strip(), row["prompt"]
        if not model:
            raise ChorusError(f"{where}: the model is blank")
        if not isinstance(prompt, str):
            raise ChorusError(f"{where}: the prompt must be text, got {type(prompt).__name__}")
        if not prompt.strip():
            raise ChorusError(f"{where}: the prompt is blank")
        named = row.get("id") not in (None, "")
        key = str(row["id"]) if named else prompt
        item = items.setdefault(key, {"prompt": prompt, "outcomes": {}, "where": where,
                                      "id": key if named else str(len(items))})
        if item["prompt"] != prompt:
            raise ChorusError(f"{where}: item {key!r} has another prompt than on "
                              f"{item['where']}")
        for extra in ("reference", "category"):
            if row.get(extra) not in (None, ""):
                item.setdefault(extra, str(row[extra]))
        if (key, model) in seen:
            raise ChorusError(f"{where}: {model!r} is recorded twice for item {key!r} (first "
                              f"on {seen[key, model]})")
        seen[key, model] = where
        cost = row["cost_usd"] if "cost_usd" in row else row.get("cost")
        item["outcomes"][model] = parse_outcome({
            "score": _score(row["score"], where),
            "cost_usd": _number(cost, where, "cost_usd"),
            "response": row.get("response") or None,
            "output_tokens": _number(row.get("output_tokens"), where, "output_tokens"),
        }, where)
    if not items:
        raise ChorusError(f"{p}: no rows (one row per item and model: model, prompt, score)")
    ids = [v["id"] for v in items.values()]
    if len(set(ids)) < len(ids):
        raise ChorusError(f"{p}: some rows have an id and some not, and an item's number "
                          "is another's id: give every row an id, or none")
    table = [OutcomeItem(v["id"], v["prompt"], v.get("category"), v.get("reference"),
                         v["outcomes"]) for v in items.values()]
    return table, list(ignored)
