from __future__ import annotations

import json
from pathlib import Path

import pytest

from chorus.core.errors import ChorusError
from chorus.eval.datasets import load_dataset


def test_jsonl_with_aliases_messages_and_limit(tmp_path: Path) -> None:
    p = tmp_path / "d.jsonl"
    rows = [
        {"id": "a", "question": "2+2?", "answer": "4", "category": "math"},
        {"messages": [{"role": "system", "content": "be brief"},
                      {"role": "user", "content": "hi"}], "reference": "hello"},
        {"prompt": "third"},
    ]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    items = load_dataset(p)
    assert [i.id for i in items] == ["a", "1", "2"]
    assert items[0].prompt == "2+2?" and items[0].reference == "4"
    assert items[0].category == "math"
    assert items[1].prompt == "hi" and len(items[1].request().messages) == 2
    assert items[0].request().metadata["item_id"] == "a"
    assert len(load_dataset(p, limit=2)) == 2


def test_csv(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    p.write_text("id,prompt,reference\nx,Capital of France?,Paris\ny,1+1?,2\n")
    items = load_dataset(p)
    assert [(i.id, i.reference) for i in items] == [("x", "Paris"), ("y", "2")]
    assert items[0].category is None


def test_errors_name_the_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text('{"prompt": "ok"}\n{"reference": "no prompt"}\n')
    with pytest.raises(ChorusError, match=r"bad.jsonl:2: needs 'prompt'"):
        load_dataset(p)
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"id": 1, "prompt": "a"}\n{"id": 1, "prompt": "b"}\n')
    with pytest.raises(ChorusError, match="duplicate item id '1'"):
        load_dataset(dup)
    with pytest.raises(ChorusError, match="does not exist"):
        load_dataset(tmp_path / "none.jsonl")
