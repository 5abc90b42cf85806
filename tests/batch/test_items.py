import json
from pathlib import Path

import pytest

from chorus.batch import InputError, scan, stream, to_request
from chorus.core.types import UNSET


def _write(path: Path, *lines: object) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n"
                            for x in lines))
    return path


def test_scan_and_stream_in_file_order(tmp_path: Path) -> None:
    p = _write(tmp_path / "in.jsonl",
               {"id": 7, "prompt": "hi", "params": {"max_tokens": 5, "stop": "x"},
                "metadata": {"team": "a"}},
               "",
               {"id": "b", "messages": [{"role": "system", "content": "be brief"},
                                        {"role": "user", "content": "hello"}]})
    assert scan(p).ids == ["7", "b"]
    items = list(stream(p))
    req = to_request(items[0])
    assert req.prompt == "hi" and req.params.max_tokens == 5 and req.params.stop == ("x",)
    assert req.params.temperature is UNSET
    assert req.metadata == {"team": "a", "item_id": "7"}
    req = to_request(items[1])
    assert req.system == "be brief" and req.prompt == "hello"
    assert [i["id"] for i in stream(p, skip={"7"})] == ["b"]


@pytest.mark.parametrize("line, message", [
    ('{"id": 1, "prompt": "a"', r"in.jsonl:2: not valid JSON \(Expecting ',' delimiter, "
                                r"column 24\)"),
    ('[1, 2]', r"in.jsonl:2: each line must be a JSON object"),
    ('{"prompt": "a"}', r"in.jsonl:2: needs an 'id'"),
    ('{"id": "x"}', r"in.jsonl:2: needs exactly one of 'prompt'"),
    ('{"id": "x", "prompt": "a", "messages": []}', r"needs exactly one of"),
    ('{"id": "x", "messages": [{"role": "bot", "content": "a"}]}', r"'messages' must be"),
    ('{"id": "x", "prompt": "a", "params": {"temprature": 1}}',
     r"in.jsonl:2: unknown parameter\(s\): temprature"),
    ('{"id": "x", "prompt": "a", "answer": "b"}', r"unknown key 'answer'.*'metadata'"),
    ('{"id": "a", "prompt": "again"}', r"in.jsonl:2: duplicate id 'a' \(first on line 1\)"),
])
def test_bad_lines_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    p = _write(tmp_path / "in.jsonl", {"id": "a", "prompt": "q"}, line)
    with pytest.raises(InputError, match=message):
        scan(p)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        scan(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(InputError, match="has no items"):
        scan(tmp_path / "empty.jsonl")


def test_a_csv_input(tmp_path: Path) -> None:
    # A spreadsheet of prompts: its id column, or else the row's number, and every other
    # column kept as metadata; semicolons and a BOM as Excel writes them.
    p = tmp_path / "in.csv"
    p.write_bytes("\ufeffid;prompt;team\r\nt-1;Summarise: a, b;support\r\nt-2;Hi;sales\r\n"
                  .encode())
    assert scan(p).ids == ["t-1", "t-2"]
    items = list(stream(p, skip={"t-1"}))
    assert [i["id"] for i in items] == ["t-2"]
    req = to_request(items[0])
    assert req.prompt == "Hi" and req.metadata == {"team": "sales", "item_id": "t-2"}
    bare = tmp_path / "bare.csv"
    bare.write_text("question\nFirst?\nSecond?\n")
    assert scan(bare).ids == ["1", "2"]
    assert to_request(next(stream(bare))).prompt == "First?"
    dup = tmp_path / "dup.csv"
    dup.write_text("id,prompt\na,x\na,y\n")
    with pytest.raises(InputError, match=r"dup.csv:3: duplicate id 'a' \(first on line 2\)"):
        scan(dup)
    none = tmp_path / "none.csv"
    none.write_text("body\nhello\n")
    with pytest.raises(InputError, match=r"needs a 'prompt' column .*it has 'body'"):
        scan(none)
