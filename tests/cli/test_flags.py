"""Numeric flags out of range, lists of names with one twice, and an output folder that is
a file, are refused before any work, in one line that names the flag."""

from pathlib import Path

import pytest

from chorus.cli.main import main

T = "t.jsonl"  # never read: every case here stops at the flags


@pytest.mark.parametrize(("args", "want"), [
    (["tune", "--outcomes", T, "--test", T, "--out", "o", "--tolerance", "-1"],
     "argument --tolerance: must be at least 0, got -1"),
    (["tune", "--outcomes", T, "--test", T, "--out", "o", "--seed", "-3"],
     "argument --seed: must be at least 0, got -3"),
    (["tune", "--outcomes", T, "--test", T, "--out", "o", "--max-cost-share", "0"],
     "argument --max-cost-share: must be more than 0 and at most 1, got 0"),
    (["tune", "--outcomes", T, "--test", T, "--out", "o", "--max-cost-share", "nan"],
     "argument --max-cost-share: expected a number, got NaN"),
    (["bench", "--systems", "s", "--dataset", T, "--tolerance", "-0.5"],
     "argument --tolerance: must be at least 0, got -0.5"),
    (["bench", "--systems", "s", "--dataset", T, "--concurrency", "0"],
     "argument --concurrency: must be at least 1, got 0"),
    (["bench", "--systems", "s", "--dataset", T, "--timeout", "0"],
     "argument --timeout: must be more than 0, got 0"),
    (["bench", "--systems", "s", "--dataset", T, "--limit", "two"],
     "argument --limit: expected a whole number, got 'two'"),
    (["outcomes", "split", T, "--train", "a", "--test", "b", "--test-share", "1"],
     "argument --test-share: must be more than 0 and less than 1, got 1"),
    (["outcomes", "split", T, "--train", "a", "--test", "b", "--limit", "0"],
     "argument --limit: must be at least 1, got 0"),
    (["router", "fit", "--outcomes", T, "--out", "r", "--holdout", "0"],
     "argument --holdout: must be more than 0 and less than 1, got 0"),
    (["router", "fit", "--outcomes", T, "--out", "r", "--holdout", "1.5"],
     "argument --holdout: must be more than 0 and less than 1, got 1.5"),
    (["router", "fit", "--outcomes", T, "--out", "r", "--k", "0"],
     "argument --k: must be at least 1, got 0"),
    (["router", "fit", "--outcomes", T, "--out", "r", "--epochs", "0"],
     "argument --epochs: must be at least 1, got 0"),
    (["router", "fit", "--outcomes", T, "--out", "r", "--seed", "-1"],
     "argument --seed: must be at least 0, got -1"),
    (["run", "--timeout", "-1", "hi"], "argument --timeout: must be more than 0, got -1"),
    (["outcomes", "vote", T, "--max-models", "0"],
     "argument --max-models: must be at least 1, got 0"),
    (["tune", "--outcomes", T, "--test", T, "--out", "o", "--models", "a,b,a"],
     "argument --models: names a more than once"),
    (["router", "fit", "--outcomes", T, "--out", "r", "--models", " , "],
     "argument --models: expected one name or more, separated by commas"),
    (["bench", "--systems", "x,y,x,y", "--dataset", T],
     "argument --systems: names x, y more than once"),
])
def test_a_number_out_of_range_is_refused_by_name(
        args: list[str], want: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert want in err and err.count("\n") == 1


@pytest.mark.parametrize("args", [
    ["tune", "--outcomes", "t.jsonl", "--test", "t.jsonl", "--out", "taken"],
    ["bench", "--systems", "s", "--dataset", "t.jsonl", "--out", "taken"],
    ["router", "fit", "--outcomes", "t.jsonl", "--out", "taken"],
    ["router", "fit", "--intents", "t.jsonl", "--out", "taken"],
])
def test_an_output_folder_that_is_a_file_is_refused_first(
        args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    Path("taken").write_text("mine", "utf-8")  # t.jsonl does not exist: nothing else ran
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err == "chorus: error: --out 'taken' is a file; give a folder to write into\n"
    assert Path("taken").read_text("utf-8") == "mine"


@pytest.mark.parametrize("args", [
    ["tune", "--outcomes", "t.jsonl", "--test", "t.jsonl", "--out", "taken/sub"],
    ["bench", "--systems", "s", "--dataset", "t.jsonl", "--out", "taken/sub"],
    ["router", "fit", "--outcomes", "t.jsonl", "--out", "taken/sub"],
])
def test_an_output_folder_that_cannot_be_made_is_refused_first(
        args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    Path("taken").write_text("mine", "utf-8")  # a file where a parent folder should be
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("chorus: error: --out 'taken/sub' cannot be made (")
    assert err.endswith("give a folder you can write to\n") and err.count("\n") == 1


def test_a_run_that_fails_after_the_output_check_leaves_no_empty_folders(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["tune", "--outcomes", "t.jsonl", "--test", "t.jsonl",
                 "--out", "a/b/c"]) == 1
    assert "'t.jsonl' does not exist" in capsys.readouterr().err
    assert not Path("a").exists()


@pytest.mark.parametrize(("args", "want"), [
    (["bench", "--systems", "s", "--dataset", "t.jsonl", "--json", "taken/b.json"],
     "--json's folder 'taken' is a file"),
    (["bench", "--systems", "s", "--dataset", "t.jsonl", "--record", "dir"],
     "--record 'dir' is a folder; give a file to write"),
    (["router", "eval", "--router", "r", "--outcomes", "t.jsonl", "--json", "dir"],
     "--json 'dir' is a folder; give a file to write"),
    (["router", "eval", "--router", "r", "--outcomes", "t.jsonl", "--plot", "taken/p.png"],
     "--plot's folder 'taken' is a file"),
    (["outcomes", "convert", "long", "t.jsonl", "-o", "taken/o.jsonl"],
     "-o's folder 'taken' is a file"),
    (["outcomes", "split", "t.jsonl", "--train", "dir", "--test", "b.jsonl"],
     "--train 'dir' is a folder; give a file to write"),
])
def test_an_output_file_that_cannot_be_written_is_refused_first(
        args: list[str], want: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    Path("taken").write_text("mine", "utf-8")
    Path("dir").mkdir()  # t.jsonl, s and r do not exist: the check ran before reading them
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"chorus: error: {want}") and err.count("\n") == 1


def test_a_dotdot_in_the_output_folder_is_the_folder_it_names(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """"x/../o" is "o" under a made "x" (as the writer makes it), not a folder that cannot
    be made; the check leaves neither behind, and ".." through a file is refused."""
    monkeypatch.chdir(tmp_path)
    assert main(["tune", "--outcomes", "t.jsonl", "--test", "t.jsonl",
                 "--out", "x/../a/b/../o"]) == 1
    assert "'t.jsonl' does not exist" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    Path("f").write_text("mine", "utf-8")
    assert main(["tune", "--outcomes", "t.jsonl", "--test", "t.jsonl",
                 "--out", "f/../o"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("chorus: error: --out 'f/../o' cannot be made (")


@pytest.mark.parametrize(("args", "want"), [
    (["outcomes", "split", "t.jsonl", "--train", "a.jsonl", "--test", "./a.jsonl"],
     "--train and --test both name './a.jsonl'; give each its own file"),
    (["outcomes", "split", "t.jsonl", "--train", "sub/../t.jsonl", "--test", "b.jsonl"],
     "--train 'sub/../t.jsonl' is also the table this reads, and writing it would lose "
     "it; give another file"),
    (["outcomes", "convert", "long", "t.jsonl", "-o", "t.jsonl"],
     "-o 't.jsonl' is also the folder this reads"),
    (["bench", "--systems", "s", "--dataset", "t.jsonl", "--record", "t.jsonl"],
     "--record 't.jsonl' is also the --dataset this reads"),
    (["router", "eval", "--router", "r", "--outcomes", "t.jsonl", "--json", "t.jsonl"],
     "--json 't.jsonl' is also the --outcomes this reads"),
    (["batch", "--input", "t.jsonl", "--output", "t.jsonl"],
     "--output 't.jsonl' is also the --input this reads"),
])
def test_an_output_that_is_an_input_or_another_output_is_refused_first(
        args: list[str], want: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    Path("t.jsonl").write_text("mine\n", "utf-8")  # not a table: nothing read it
    Path("sub").mkdir()
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"chorus: error: {want}") and err.count("\n") == 1
    assert Path("t.jsonl").read_text("utf-8") == "mine\n"
    assert not Path("a.jsonl").exists()
