"""``chorus batch`` as a user runs it: a separate process, killed with SIGKILL mid-run."""

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chorus.cli.main import main
from tests.batch._jobs import records, write_config, write_items

CHORUS = [sys.executable, "-m", "chorus.cli.main"]


def _batch(cfg: Path, inp: Path, out: Path, *extra: str) -> list[str]:
    return [*CHORUS, "batch", "-c", str(cfg), "-s", "job", "--input", str(inp),
            "--output", str(out), *extra]


def test_kill_9_then_resume_answers_each_item_exactly_once(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, latency=0.02)
    inp = write_items(tmp_path / "in.jsonl", 400)
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen(_batch(cfg, inp, out, "--concurrency", "4"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (out.exists() and out.read_text().count("\n") >= 40):
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no answers after 60 s"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    before = out.read_text().count("\n")
    assert 40 <= before < 400
    with out.open("a") as f:  # what a kill during a write leaves: half a line
        f.write('{"id": "item-399", "te')
    done = subprocess.run(_batch(cfg, inp, out, "--concurrency", "4", "--resume"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "cut off a torn last line" in done.stderr
    assert f"{before} of 400 items already have a line" in done.stderr
    recs = records(out)
    counts = collections.Counter(r["id"] for r in recs)
    assert set(counts) == {f"item-{i}" for i in range(400)}
    assert max(counts.values()) == 1 and all(r["text"] == "ok" for r in recs)
    assert f"{400 - before} done, 0 failed, 0 left, {before} from before" in done.stdout
    again = subprocess.run(_batch(cfg, inp, out, "--resume"), capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 0 and "nothing to do" in again.stdout


def test_ctrl_c_stops_cleanly_and_resume_finishes(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, latency=0.02)
    inp = write_items(tmp_path / "in.jsonl", 300)
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen(_batch(cfg, inp, out, "--concurrency", "4"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (out.exists() and out.read_text().count("\n") >= 20):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    written = out.read_text()
    assert written.endswith("\n") and len(written.splitlines()) < 300
    assert f"interrupted: {len(written.splitlines())} answers written" in err
    done = subprocess.run(_batch(cfg, inp, out, "--resume"), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert sorted(r["id"] for r in records(out)) == sorted(f"item-{i}" for i in range(300))


def _small_file_limit() -> None:
    """In the child: files may not grow past 3,000 bytes, as on a full disk (the write
    that crosses the limit is cut short; the next fails)."""
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (3000, 3000))


def test_a_full_disk_stops_the_run_and_resume_finishes_it(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    inp = write_items(tmp_path / "in.jsonl", 100)
    out = tmp_path / "out.jsonl"
    full = subprocess.run(_batch(cfg, inp, out), capture_output=True, text=True, timeout=120,
                          preexec_fn=_small_file_limit)
    assert full.returncode == 1
    assert full.stderr.strip().splitlines()[-1].startswith(
        f"chorus: error: cannot write to '{out}'")
    assert "run again with --resume" in full.stderr
    assert out.stat().st_size == 3000 and not out.read_bytes().endswith(b"\n")
    done = subprocess.run(_batch(cfg, inp, out, "--resume"), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "cut off a torn last line" in done.stderr
    recs = records(out)
    assert sorted(r["id"] for r in recs) == sorted(f"item-{i}" for i in range(100))


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    got = capsys.readouterr()
    return code, got.out, got.err


def test_errors_are_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path)
    out = tmp_path / "out.jsonl"
    code, _, err = _cli(capsys, "batch", "-c", str(cfg), "-s", "job", "--input",
                        str(tmp_path / "none.jsonl"), "--output", str(out))
    assert code == 1 and err.count("\n") == 1 and "none.jsonl' does not exist" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "prompt": "x"}\n{"id": "a", "prompt": "y"}\n')
    code, _, err = _cli(capsys, "batch", "-c", str(cfg), "-s", "job", "--input", str(bad),
                        "--output", str(out))
    assert code == 1 and err.strip() == \
        f"chorus: error: {bad}:2: duplicate id 'a' (first on line 1)"
    assert not out.exists()
    inp = write_items(tmp_path / "in.jsonl", 3)
    code, _, err = _cli(capsys, "batch", "-c", str(cfg), "-s", "nope", "--input", str(inp),
                        "--output", str(out))
    assert code == 1 and "unknown model or system 'nope'" in err
    out.write_text('{"id": "item-0", "text": "ok"}\n')
    code, _, err = _cli(capsys, "batch", "-c", str(cfg), "-s", "job", "--input", str(inp),
                        "--output", str(out))
    assert code == 1 and "already holds 1 answers; pass --resume" in err
    code, _, err = _cli(capsys, "batch", "-c", str(cfg), "-s", "job", "--input", str(inp),
                        "--output", str(out), "--resume", "--engine", "ray", "--budget", "1")
    assert code == 1 and "needs a store every worker shares" in err
    # A bad flag or config changes nothing in the output (no repair, no retry rewrite).
    out.write_text('{"id": "item-0", "text": "ok"}\n{"id": "item-1", "error": {}}\n{"id"')
    before = out.read_bytes()
    code, _, err = _cli(capsys, "batch", "-c", str(cfg), "-s", "nope", "--input", str(inp),
                        "--output", str(out), "--retry-failed")
    assert code == 1 and "unknown model or system 'nope'" in err
    assert out.read_bytes() == before


def test_budget_stops_cleanly_and_resume_continues(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path, max_tokens=20)
    inp = write_items(tmp_path / "in.jsonl", 30)
    out = tmp_path / "out.jsonl"
    args = ["batch", "-c", str(cfg), "-s", "job", "--input", str(inp), "--output", str(out)]
    code, stdout, err = _cli(capsys, *args, "--budget", "0.2")
    assert code == 3 and "stopped: budget reached" in err and "18 left" in stdout
    assert sum(r["cost_usd"] for r in records(out)) == pytest.approx(0.18)
    # The budget is for the whole output: what earlier runs spent counts.
    code, stdout, err = _cli(capsys, *args, "--budget", "0.2", "--resume")
    assert code == 3 and "0 done" in stdout
    code, stdout, _ = _cli(capsys, *args, "--budget", "1.0", "--resume")
    assert code == 0 and "18 done" in stdout and "0 left" in stdout
    assert sorted(r["id"] for r in records(out)) == sorted(f"item-{i}" for i in range(30))


def test_retry_failed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path)
    inp = write_items(tmp_path / "in.jsonl", 10)
    out = tmp_path / "out.jsonl"
    args = ["batch", "-c", str(cfg), "-s", "flaky", "--input", str(inp), "--output", str(out),
            "--concurrency", "1"]
    code, stdout, err = _cli(capsys, *args)
    assert code == 0 and "7 done, 3 failed" in stdout
    # Why they failed, on the terminal too, not only in the output's lines.
    message = records(out)[0]["error"]["message"]
    assert f"batch: 3 x {message} (first: item item-0)" in err
    assert f"each failed item's line in {out} holds its error; --retry-failed" in err
    code, stdout, _ = _cli(capsys, *args, "--resume")
    assert "nothing to do" in stdout
    # The same config in a new process fails its first 3 calls again: retry them on the
    # healthy model (what a user does once the upstream is fixed).
    code, stdout, err = _cli(capsys, *args, "--retry-failed", "-s", "job")
    assert code == 0 and "3 done, 0 failed" in stdout and "answering 3 failed" in err
    recs = records(out)
    assert len(recs) == 10 and all(r["text"] == "ok" for r in recs)
    assert json.loads(out.read_text().splitlines()[-1])["id"] in {"item-0", "item-1", "item-2"}
