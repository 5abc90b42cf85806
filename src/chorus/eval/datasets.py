"""Evaluation items from JSONL, JSON or CSV (comma, semicolon or tab separated): id,
prompt (or chat messages), reference and an optional category.

Column names are forgiving where data sets disagree: ``question``/``input`` stand for
``prompt``, ``answer``/``target``/``label`` for ``reference``. An outcome table (see
``outcomes.py``) is a dataset too: its rows have the same keys.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chorus.core.errors import ChorusError
from chorus.core.types import Message, Request

__all__ = ["Item", "PROMPT_KEYS", "csv_rows", "json_line", "jsonl_rows", "load_dataset",
           "item_from_dict"]

#: The names a prompt goes by in a dataset's rows or a CSV's columns.
PROMPT_KEYS = ("prompt", "question", "input", "text")
_REFERENCE_KEYS = ("reference", "answer", "target", "label", "gold")
_ROLES = ("system", "user", "assistant", "tool")


@dataclass(frozen=True, slots=True)
class Item:
    """One thing to ask, and what a right answer looks like."""

    id: str
    prompt: str
    reference: str | None = None
    category: str | None = None
    messages: tuple[Message, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def request(self) -> Request:
        """The request for this item; ``metadata["item_id"]`` lets ``replay`` find it."""
        msgs = self.messages or (Message("user", self.prompt),)
        return Request(msgs, metadata={"item_id": self.id})


def _first(row: Mapping[str, Any], keys: Sequence[str]) -> Any:
    for key in keys:
        if row.get(key) not in (None, ""):
            return row[key]
    return None


def _messages(raw: Any, where: str) -> tuple[Message, ...]:
    if not isinstance(raw, list) or not raw:
        raise ChorusError(f"{where}: 'messages' must be a non-empty list of {{role, content}}")
    out = []
    for m in raw:
        if not (isinstance(m, dict) and m.get("role") in _ROLES
                and isinstance(m.get("content"), str)):
            raise ChorusError(f"{where}: each message needs a role ({'/'.join(_ROLES)}) "
                              "and a string content")
        out.append(Message(m["role"], m["content"]))
    return tuple(out)


def item_from_dict(row: Mapping[str, Any], index: int, where: str = "item") -> Item:
    """An Item from one JSON object or CSV row (``index`` is its id when it has none)."""
    messages: tuple[Message, ...] = ()
    raw_messages = row.get("messages")
    if isinstance(raw_messages, str) and raw_messages.strip().startswith("["):
        raw_messages = json.loads(raw_messages)
    if raw_messages not in (None, ""):
        messages = _messages(raw_messages, where)
    prompt = _first(row, PROMPT_KEYS)
    if prompt is None and messages:
        prompt = next((m.content for m in reversed(messages) if m.role == "user"), "")
    if prompt is None:
        fields = ", ".join(repr(str(k)) for k in list(row)[:8]) or "none"
        raise ChorusError(f"{where}: needs 'prompt' (or question/input/text) or 'messages' "
                          f"(its fields: {fields}{', ...' if len(row) > 8 else ''})")
    reference = _first(row, _REFERENCE_KEYS)
    category = row.get("category")
    ident = row.get("id", row.get("question_id"))
    known = {"id", "question_id", "messages", "category", *PROMPT_KEYS, *_REFERENCE_KEYS}
    return Item(
        id=str(ident) if ident not in (None, "") else str(index),
        prompt=str(prompt),
        reference=None if reference is None else str(reference),
        category=None if category in (None, "") else str(category),
        messages=messages,
        extra={k: v for k, v in row.items() if k not in known},
    )


def csv_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """The rows of a CSV file one at a time, each with its line in the file, the
    delimiter read off the header: a tab for .tsv, else whichever of comma, semicolon
    (Excel's where the decimal mark is a comma) and tab the header has most of, a comma on
    a tie."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        header = f.readline()
        f.seek(0)
        delimiter = "\t" if path.suffix.lower() == ".tsv" else max(
            (",", ";", "\t"), key=lambda d: (header.count(d), d == ","))
        for i, row in enumerate(csv.DictReader(f, delimiter=delimiter)):
            yield i + 2, row


def jsonl_rows(path: Path, error: type[ChorusError] = ChorusError, hint: str = ""
               ) -> Iterator[tuple[int, Any]]:
    """The values of a JSONL file one at a time, each with its line in the file; blank
    lines skipped, a bad line an ``error`` (see ``json_line``)."""
    with path.open(encoding="utf-8-sig") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                yield n, json_line(line, f"{path}:{n}", error, hint)


def json_line(line: str, where: str, error: type[ChorusError] = ChorusError,
              hint: str = "") -> Any:
    """One line of a JSONL file, parsed; else ``error`` naming ``where`` (``file:line``),
    the problem and its column, then ``hint``."""
    try:
        return json.loads(line.rstrip())
    except json.JSONDecodeError as exc:
        raise error(f"{where}: not valid JSON ({exc.msg}, column {exc.colno}){hint}") from None


def load_dataset(path: str | Path, *, limit: int | None = None) -> list[Item]:
    """The items of a ``.jsonl`` / ``.json`` / ``.csv`` / ``.tsv`` file, in file order (any
    other name is read as JSONL)."""
    p = Path(path)
    if not p.is_file():
        raise ChorusError(f"dataset {str(p)!r} does not exist")
    rows: list[tuple[str, Mapping[str, Any]]] = []
    suffix = p.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            rows = [(f"{p}:{n}", r) for n, r in csv_rows(p)]
        elif suffix == ".json":
            try:
                data = json.loads(p.read_text("utf-8-sig"))
            except json.JSONDecodeError as exc:
                raise ChorusError(f"{p}: not valid JSON ({exc.msg}, line {exc.lineno} column "
                                  f"{exc.colno})") from None
            if not isinstance(data, list):
                raise ChorusError(f"{p}: a .json dataset must be a list of objects")
            rows = [(f"{p}[{i}]", r) for i, r in enumerate(data)]
        else:
            hint = "" if suffix in (".jsonl", ".ndjson") else (
                "; read as JSONL: a dataset is .jsonl (one JSON object a line), "
                ".json (a list of objects) or .csv")
            for n, value in jsonl_rows(p, hint=hint):
                rows.append((f"{p}:{n}", value))
                if limit is not None and len(rows) >= limit:
                    break
    except UnicodeDecodeError as exc:
        raise ChorusError(f"{p}: not UTF-8 text ({exc})") from None
    if limit is not None:
        rows = rows[:limit]
    items = []
    for i, (where, row) in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ChorusError(f"{where}: each item must be an object")
        items.append(item_from_dict(row, i, where))
    seen: set[str] = set()
    for it in items:
        if it.id in seen:
            raise ChorusError(f"{p}: duplicate item id {it.id!r}")
        seen.add(it.id)
    return items
