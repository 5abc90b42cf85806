"""Outcome tables from a user's own records in the long shape, one row per item and
model, as a log or a spreadsheet holds them."""

from __future__ import annotations

from pathlib import Path

import pytest

from chorus.cli.main import main
from chorus.core.errors import ChorusError
from chorus.eval.long_table import long_outcomes
from chorus.eval.outcomes import read_outcomes

LOG = """timestamp,model,prompt,score,cost_usd,response,reference
2026-01-01,big,What is 2+2?,1,0.002,4,4
2026-01-01,small,What is 2+2?,yes,0.0001,4,
2026-01-02,big,"Capital of France, in one word?",1,0.003,Paris,Paris
2026-01-02,small,"Capital of France, in one word?",WRONG,0.0001,Lyon,
2026-01-03,small,Name a prime number.,,0.0001,9,
"""


def test_a_csv_log_becomes_an_outcome_table(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "log.csv").write_text(LOG)
    out = tmp_path / "t.jsonl"
    assert main(["outcomes", "convert", "long", str(tmp_path / "log.csv"), "-o",
                 str(out)]) == 0
    captured = capsys.readouterr()
    assert f"wrote 3 items (2 models) to {out}" in captured.out
    assert f"note: {tmp_path / 'log.csv'}: columns left out: timestamp" in captured.err
    rows = read_outcomes(out)
    assert [r.prompt for r in rows] == ["What is 2+2?", "Capital of France, in one word?",
                                       "Name a prime number."]
    assert [r.id for r in rows] == ["0", "1", "2"]  # no id column: numbered
    first, second, third = rows
    assert first.reference == "4" and second.reference == "Paris" and third.reference is None
    assert {m: (o.score, o.cost_usd, o.response) for m, o in second.outcomes.items()} == {
        "big": (1.0, 0.003, "Paris"), "small": (0.0, 0.0001, "Lyon")}
    assert first.outcomes["small"].score == 1.0  # "yes"
    assert set(third.outcomes) == {"small"} and third.outcomes["small"].score is None
    # Only some models.
    assert main(["outcomes", "convert", "long", str(tmp_path / "log.csv"), "-o",
                 str(out), "--models", "small"]) == 0
    assert "(1 model)" in capsys.readouterr().out
    assert all(set(r.outcomes) == {"small"} for r in read_outcomes(out))
    assert main(["outcomes", "convert", "long", str(tmp_path / "log.csv"), "-o",
                 str(out), "--models", "nope"]) == 1
    assert "no outcomes recorded for 'nope'; the table has big, small" in \
        capsys.readouterr().err


def test_jsonl_records_with_ids_and_the_cost_column_named_cost(tmp_path: Path) -> None:
    (tmp_path / "l.jsonl").write_text(
        '{"id": "q1", "model": "m", "prompt": "hi", "score": true, "cost": 0.1, '
        '"output_tokens": 7, "category": "greeting"}\n\n'
        '{"id": "q1", "model": "n", "prompt": "hi", "score": 0.5}\n')
    rows, ignored = long_outcomes(tmp_path / "l.jsonl")
    assert ignored == [] and len(rows) == 1
    row = rows[0]
    assert (row.id, row.category) == ("q1", "greeting")
    assert (row.outcomes["m"].score, row.outcomes["m"].cost_usd,
            row.outcomes["m"].output_tokens) == (1.0, 0.1, 7)
    assert (row.outcomes["n"].score, row.outcomes["n"].cost_usd) == (0.5, None)
    (tmp_path / "m.jsonl").write_text('{"model": "m", "prompt": [{"role": "user"}], '
                                      '"score": 1}\n')
    with pytest.raises(ChorusError, match=r"m.jsonl:1: the prompt must be text, got list"):
        long_outcomes(tmp_path / "m.jsonl")


@pytest.mark.parametrize(("text", "message"), [
    ("model,prompt,score\nm,hi,1\nm,hi,0\n",
     "f.csv:3: 'm' is recorded twice for item 'hi' (first on {f}:2)"),
    ("model,prompt,score\nm,hi,2\n", "f.csv:2: score must lie in [0, 1]"),
    ("model,prompt,score\nm,hi,maybe\n",
     "f.csv:2: score must be a number in [0, 1], or true/false, yes/no, right/wrong, "
     "got 'maybe'"),
    ("model,text,score\nm,hi,1\n",
     "f.csv:2: needs a 'prompt' column (has: model, text, score); one row per item and "
     "model"),
    ("model,prompt,score,cost_usd\nm,hi,1,cheap\n", "f.csv:2: cost_usd must be a number"),
    ("model,prompt,score,cost_usd\nm,hi,1,-1\n", "f.csv:2: cost_usd must be at least 0"),
    ("model,prompt,score\n,hi,1\n", "f.csv:2: the model is blank"),
    ("id,model,prompt,score\nq,m,hi,1\nq,n,ho,1\n",
     "f.csv:3: item 'q' has another prompt than on {f}:2"),
    ("id,model,prompt,score\n1,m,hi,1\n,m,ho,1\n",
     "some rows have an id and some not"),
    ("model,prompt,score\n", "no rows (one row per item and model: model, prompt, score)"),
    ("model,prompt,score\nm, ,1\n", "f.csv:2: the prompt is blank"),
])
def test_bad_records_get_one_line_naming_the_row(tmp_path: Path, text: str,
                                                 message: str) -> None:
    f = tmp_path / "f.csv"
    f.write_text(text)
    with pytest.raises(ChorusError) as err:
        long_outcomes(f)
    assert message.format(f=f) in str(err.value)


def test_a_folder_or_a_missing_file_says_what_to_give(tmp_path: Path) -> None:
    with pytest.raises(ChorusError, match="is a folder; give the file of records"):
        long_outcomes(tmp_path)
    with pytest.raises(ChorusError, match="does not exist; give the file of records"):
        long_outcomes(tmp_path / "none.csv")


def test_a_long_file_given_as_an_outcome_table_says_how_to_convert_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "log.csv").write_text(LOG)
    (tmp_path / "log.txt").write_text(LOG)
    for name in ("log.csv", "log.txt"):
        path = tmp_path / name
        assert main(["outcomes", "split", str(path), "--train", str(tmp_path / "a"),
                     "--test", str(tmp_path / "b")]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "an outcome table is JSONL" in err
        assert f"`chorus outcomes convert long {path} -o TABLE.jsonl`" in err
