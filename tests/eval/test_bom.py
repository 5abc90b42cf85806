"""Files saved by Windows tools (Notepad, Excel's "CSV UTF-8") start with a UTF-8 byte
order mark. Every data file chorus reads takes them as it takes the same file without
one: a BOM is not part of the first field name, nor a JSON error."""

from __future__ import annotations

import json
from pathlib import Path

from chorus.batch import scan, stream
from chorus.cli.bench import _is_outcome_table
from chorus.eval.datasets import load_dataset
from chorus.eval.intents import read_intents
from chorus.eval.outcomes import Outcome, OutcomeItem, read_outcomes, write_outcomes
from chorus.patterns._weights import load_weights

BOM = "\ufeff"


def _bom(path: Path, text: str, newline: str = "\r\n") -> Path:
    # As Notepad and Excel write them: the mark, then CRLF line ends.
    path.write_bytes((BOM + text.replace("\n", newline)).encode("utf-8"))
    return path


def test_datasets_with_a_bom(tmp_path: Path) -> None:
    rows = [{"id": "a", "prompt": "Capital of France?", "reference": "Paris"},
            {"id": "b", "prompt": "2+2?", "reference": "4"}]
    jsonl = _bom(tmp_path / "d.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    array = _bom(tmp_path / "d.json", json.dumps(rows))
    csv = _bom(tmp_path / "d.csv", "id,prompt,reference\na,Capital of France?,Paris\n"
                                   "b,2+2?,4\n")
    for p in (jsonl, array, csv):
        items = load_dataset(p)
        assert [(i.id, i.prompt, i.reference) for i in items] == [
            ("a", "Capital of France?", "Paris"), ("b", "2+2?", "4")], p


def test_an_outcome_table_with_a_bom(tmp_path: Path) -> None:
    rows = [OutcomeItem("1", "q", None, "4", {"a": Outcome(1.0, 0.01, "4", 1)})]
    plain = tmp_path / "plain.jsonl"
    write_outcomes(plain, rows)
    marked = _bom(tmp_path / "t.jsonl", plain.read_text("utf-8"), newline="\n")
    assert read_outcomes(marked) == rows
    assert _is_outcome_table(marked)  # bench --dataset tells it from a dataset


def test_batch_items_intents_and_weights_with_a_bom(tmp_path: Path) -> None:
    items = _bom(tmp_path / "in.jsonl", '{"id": "x", "prompt": "hi"}\n{"id": "y", '
                                        '"prompt": "ho"}\n')
    assert scan(items).ids == ["x", "y"]
    assert [i["id"] for i in stream(items)] == ["x", "y"]
    intents = _bom(tmp_path / "i.jsonl", '{"text": "hello there", "label": "greet"}\n')
    assert read_intents(intents) == [("hello there", "greet")]
    weights = _bom(tmp_path / "w.json", '{"weights": {"a": 2.0}}')
    assert load_weights(weights) == {"a": 2.0}
