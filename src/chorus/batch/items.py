"""The input of a batch run: JSONL, one item a line, read as a stream (or a CSV/TSV file
with a ``prompt`` column: see ``_csv_items``).

    {"id": "t-1", "prompt": "Summarise ...", "params": {"max_tokens": 200},
     "metadata": {"team": "support"}}
    {"id": "t-2", "messages": [{"role": "system", "content": "..."},
                               {"role": "user", "content": "..."}]}

``scan`` reads the file once before anything is spent, so a bad line or a duplicate id
stops the run with one line that names the file and line number; ``stream`` then reads
it again, one item at a time, so a file of any size holds only the ids in memory.
An item travels as a plain dict (it crosses to Ray workers); ``to_request`` turns it into
the Request a system answers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chorus.core.errors import ChorusError
from chorus.core.types import Message, Params, Request
from chorus.eval.datasets import PROMPT_KEYS, csv_rows, jsonl_rows

__all__ = ["InputError", "Scan", "scan", "stream", "to_request"]

_KEYS = ("id", "prompt", "messages", "params", "metadata")
_ROLES = ("system", "user", "assistant", "tool")


class InputError(ChorusError):
    """A line of the input file that cannot be run, or a file that cannot be read."""

    code = "input_error"


@dataclass(frozen=True, slots=True)
class Scan:
    """What one pass over the input found: every id, in file order."""

    path: Path
    ids: list[str]


def _item(row: Any, where: str) -> dict[str, Any]:
    """One checked item: id (as text), messages, params and metadata."""
    if not isinstance(row, dict):
        raise InputError(f"{where}: each line must be a JSON object")
    unknown = sorted(set(row) - set(_KEYS))
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r} (an item has "
                         f"{', '.join(_KEYS)}; put anything else under 'metadata')")
    ident = row.get("id")
    if isinstance(ident, bool) or not isinstance(ident, str | int) or ident == "":
        raise InputError(f"{where}: needs an 'id' (a non-empty string or an integer)")
    prompt, raw = row.get("prompt"), row.get("messages")
    if (prompt is None) == (raw is None):
        raise InputError(f"{where}: needs exactly one of 'prompt' (a string) or 'messages'")
    if prompt is not None:
        if not isinstance(prompt, str):
            raise InputError(f"{where}: 'prompt' must be a string")
        messages = [{"role": "user", "content": prompt}]
    else:
        if not isinstance(raw, list) or not raw or not all(
                isinstance(m, dict) and set(m) == {"role", "content"}
                and m["role"] in _ROLES and isinstance(m["content"], str) for m in raw):
            raise InputError(f"{where}: 'messages' must be a non-empty list of "
                             f"{{role, content}} ({'/'.join(_ROLES)}, text)")
        messages = raw
    params = row.get("params") or {}
    if not isinstance(params, dict):
        raise InputError(f"{where}: 'params' must be an object")
    try:
        Params.from_dict(params)
    except TypeError as exc:
        known = ", ".join(f.name for f in dataclasses.fields(Params))
        raise InputError(f"{where}: {exc} (known: {known})") from None
    metadata = row.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise InputError(f"{where}: 'metadata' must be an object")
    return {"id": str(ident), "messages": messages, "params": params, "metadata": metadata}


def _rows(path: Path) -> Iterator[tuple[int, Any]]:
    """Each item of the file as it stands (a JSON value, or a CSV row as an item), with
    its line in the file, one at a time."""
    try:
        if path.suffix.lower() in (".csv", ".tsv"):
            yield from _csv_items(path)
            return
        yield from jsonl_rows(path, InputError)
    except FileNotFoundError:
        raise InputError(f"input {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise InputError(f"input {str(path)!r} is a folder, not a JSONL file") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") \
            from None


def _csv_items(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """A CSV (or .tsv) file's rows as items: its ``prompt`` column (or question/input/
    text), its ``id`` column or else the row's number, every other column as metadata."""
    for i, (n, row) in enumerate(csv_rows(path), 1):
        prompt = next((c for c in PROMPT_KEYS if c in row), None)
        if prompt is None:
            raise InputError(f"{path}: a CSV input needs a 'prompt' column (or question/"
                             f"input/text); it has {', '.join(map(repr, row)) or 'none'}")
        item = {"id": row["id"] if "id" in row else i, "prompt": row[prompt],
                "metadata": {k: v for k, v in row.items() if k not in ("id", prompt)}}
        yield n, item


def scan(path: str | Path) -> Scan:
    """Check every line and that no id repeats; the ids in file order."""
    p = Path(path)
    first: dict[str, int] = {}
    for n, row in _rows(p):
        ident = _item(row, f"{p}:{n}")["id"]
        if ident in first:
            raise InputError(f"{p}:{n}: duplicate id {ident!r} (first on line {first[ident]})")
        first[ident] = n
    if not first:
        raise InputError(f"input {str(p)!r} has no items")
    return Scan(p, list(first))


def stream(path: str | Path, skip: set[str] | frozenset[str] = frozenset()
           ) -> Iterator[dict[str, Any]]:
    """The items of the file one at a time, in file order, less the ids in ``skip``."""
    p = Path(path)
    for n, row in _rows(p):
        item = _item(row, f"{p}:{n}")
        if item["id"] not in skip:
            yield item


def to_request(item: dict[str, Any]) -> Request:
    """The request for an item; ``metadata["item_id"]`` is its id (``replay`` finds the
    recorded answer by it)."""
    messages = tuple(Message(m["role"], m["content"]) for m in item["messages"])
    metadata = {**item["metadata"], "item_id": item["id"]}
    return Request(messages, Params.from_dict(item["params"]), metadata)
