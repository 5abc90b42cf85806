import json
import os
from pathlib import Path

import pytest

from chorus.batch import OutputError, Writer, open_output


def _lines(path: Path, *recs: dict) -> None:  # type: ignore[type-arg]
    with path.open("w") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")


def test_new_output_and_missing_folder(tmp_path: Path) -> None:
    prev = open_output(tmp_path / "out.jsonl", resume=False)
    assert prev.answered == set() and not prev.repaired
    with pytest.raises(OutputError, match="folder of output"):
        open_output(tmp_path / "no" / "out.jsonl", resume=True)


def test_existing_output_needs_resume(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    _lines(out, {"id": "a", "text": "x", "cost_usd": 0.5})
    with pytest.raises(OutputError, match="already holds 1 answers; pass --resume"):
        open_output(out, resume=False)
    prev = open_output(out, resume=True)
    assert prev.done == {"a"} and prev.cost_usd == 0.5


def test_torn_last_line_is_cut_off(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    _lines(out, {"id": "a", "text": "x"}, {"id": "b", "error": {"kind": "timeout"}})
    whole = out.read_bytes()
    with out.open("ab") as f:
        f.write(b'{"id": "c", "te')
    prev = open_output(out, resume=True)
    assert prev.repaired and prev.done == {"a"} and prev.failed == {"b"}
    assert out.read_bytes() == whole


def test_damage_before_the_end_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": "a"}\nnot json\n{"id": "b"}\n')
    with pytest.raises(OutputError, match=r"out.jsonl:2: not a record"):
        open_output(out, resume=True)
    out.write_text('{"id": "a"}\n{"id": "a"}\n')
    with pytest.raises(OutputError, match=r"out.jsonl:2: id 'a' appears twice"):
        open_output(out, resume=True)


def test_retry_failed_removes_failed_lines(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    _lines(out, {"id": "a", "text": "x", "cost_usd": 1.0},
           {"id": "b", "error": {"kind": "server_error"}, "cost_usd": 0.25},
           {"id": "c", "text": "y", "cost_usd": 2.0})
    prev = open_output(out, resume=False, retry_failed=True)
    assert prev.retried == 1 and prev.failed == set() and prev.done == {"a", "c"}
    assert prev.cost_usd == 3.0
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["a", "c"]


def test_writer_appends_whole_lines(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    w = Writer(out)
    w.write({"id": "a", "text": "é"})
    w.write({"id": "b", "text": "x\ny"})
    w.close()
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["a", "b"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_full_disk_is_one_clear_error() -> None:
    w = Writer("/dev/full")
    with pytest.raises(OutputError, match="No space left on device.*--resume"):
        w.write({"id": "a", "text": "x"})
    w.close()
