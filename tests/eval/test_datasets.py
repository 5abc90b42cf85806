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


def test_csv_separated_by_semicolons_or_tabs(tmp_path: Path) -> None:
    # Excel writes semicolons where the decimal mark is a comma; .tsv is tab separated.
    want = [("x", "Capital of France?", "Paris"), ("y", "1,5 + 1?", "2,5")]
    semi = tmp_path / "d.csv"
    semi.write_text("id;prompt;reference\nx;Capital of France?;Paris\ny;1,5 + 1?;2,5\n")
    tabs = tmp_path / "d.tsv"
    tabs.write_text("id\tprompt\treference\nx\tCapital of France?\tParis\ny\t1,5 + 1?\t2,5\n")
    for p in (semi, tabs):
        assert [(i.id, i.prompt, i.reference) for i in load_dataset(p)] == want, p


def test_a_json_error_names_the_file_line(tmp_path: Path) -> None:
    p = tmp_path / "cut.jsonl"
    p.write_text('{"prompt": "one"}\n\n{"prompt": "two"\n')
    with pytest.raises(ChorusError) as err:
        load_dataset(p)
    assert str(err.value) == (f"{p}:3: not valid JSON (Expecting ',' delimiter, column 17)")
    # A file not named .jsonl is read as JSONL, and the error says what a dataset is.
    txt = tmp_path / "notes.txt"
    txt.write_text("hello\n")
    with pytest.raises(ChorusError, match=r"notes.txt:1: not valid JSON .*read as JSONL: a "
                                          r"dataset is .jsonl .*, .json .* or .csv"):
        load_dataset(txt)
    whole = tmp_path / "d.json"
    whole.write_text('[{"prompt": "a"},\n {"prompt": }]')
    with pytest.raises(ChorusError, match=r"d.json: not valid JSON \(Expecting value, line 2 "
                                          r"column 13\)"):
        load_dataset(whole)


def test_a_row_without_a_prompt_lists_its_fields(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    p.write_text("query,gold\nCapital of France?,Paris\n")
    with pytest.raises(ChorusError, match=r"d.csv:2: needs 'prompt' \(or question/input/text\) "
                                          r"or 'messages' \(its fields: 'query', 'gold'\)"):
        load_dataset(p)
