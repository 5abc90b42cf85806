from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from chorus.cli.main import main
from chorus.eval.outcomes import Outcome, OutcomeItem, read_outcomes, write_outcomes
from tests.eval._data import small_routellm_gsm8k


def _table(path: Path, n: int = 12) -> Path:
    rows = [OutcomeItem(f"i{i}", f"question {i}", None, "x",
                        {"good": Outcome(1.0 if i % 4 else 0.0, 0.01, "x", 2),
                         "bad": Outcome(0.0, 0.001, "y", 2)}) for i in range(n)]
    write_outcomes(path, rows)
    return path


def score_one(request: object, answer: str) -> float:
    return 1.0


CONFIG = """
models:
  good: {provider: replay, outcomes: t.jsonl}
  bad: {provider: replay, outcomes: t.jsonl}
  good2: {provider: replay, outcomes: t.jsonl, model: good}
systems:
  vote: {kind: vote, models: [good, bad, good2]}
  ens:
    kind: weighted
    models: [good, bad]
    scorer: tests.eval.test_cli:score_one
    weights_file: w.json
"""


def test_bench_writes_every_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _table(tmp_path / "t.jsonl")
    (tmp_path / "c.yaml").write_text(CONFIG)
    out = tmp_path / "out"
    code = main(["bench", "-c", str(tmp_path / "c.yaml"), "--systems", "good,bad,vote",
                 "--dataset", str(tmp_path / "t.jsonl"), "--limit", "8", "--out", str(out),
                 "--json", str(tmp_path / "s.json"), "--record", str(tmp_path / "rec.jsonl")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    rows = json.loads((tmp_path / "s.json").read_text())
    by = {r["system"]: r for r in rows}
    assert by["good"]["quality"] == pytest.approx(6 / 8) and by["bad"]["quality"] == 0.0
    assert by["vote"]["calls_per_item"] == 3 and by["vote"]["kind"] == "parallel"
    assert by["good"]["cost_usd"] == pytest.approx(0.08)
    assert {"system", "quality", "cost_usd", "latency_p50_s", "errors"} <= set(rows[0])
    # vote ties good on quality, so the simpler single model is recommended.
    assert "recommended: good" in captured.out
    for name in ("report.md", "report.csv", "report.json", "cost_quality.png"):
        assert (out / name).is_file()
    recorded = read_outcomes(tmp_path / "rec.jsonl")
    assert len(recorded) == 8 and set(recorded[0].outcomes) == {"good", "bad", "vote"}
    assert "8/8" in captured.err or "24/24" in captured.err


def test_bench_unknown_system_is_one_line(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    _table(tmp_path / "t.jsonl")
    (tmp_path / "c.yaml").write_text(CONFIG)
    code = main(["bench", "-c", str(tmp_path / "c.yaml"), "--systems", "nope",
                 "--dataset", str(tmp_path / "t.jsonl"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 1 and "unknown model or system 'nope'" in err and err.count("\n") == 1


def test_bench_says_why_items_failed(tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    # The replay models answer from t.jsonl; four of the dataset's items are not in it.
    _table(tmp_path / "t.jsonl", n=8)
    _table(tmp_path / "more.jsonl", n=12)
    (tmp_path / "c.yaml").write_text(CONFIG)
    assert main(["bench", "-c", str(tmp_path / "c.yaml"), "--systems", "vote,good",
                 "--dataset", str(tmp_path / "more.jsonl"), "--out", str(tmp_path / "o"),
                 "--no-plot"]) == 0
    err = capsys.readouterr().err
    for system in ("vote", "good"):
        assert f"chorus bench: {system}: 4 of 12 items failed" in err
    assert (f"4 x model 'good': no recorded outcome for this item_id or prompt in "
            f"{tmp_path / 't.jsonl'} (the table has 8 items; is this one of them?)") in err
    assert "(first: item i8)" in err
    report = (tmp_path / "o" / "report.md").read_text()
    assert "### Errors" in report and "vote: 4 of 12 items failed" in report


def test_bench_counts_one_message_for_items_that_fail_alike(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Three rows have no outcome for 'bad': the message names each item, and still the
    # three count as one message, not three of one.
    rows = read_outcomes(_table(tmp_path / "t.jsonl"))
    write_outcomes(tmp_path / "t.jsonl", [
        replace(r, outcomes={"good": r.outcomes["good"]}) if i in (2, 5, 7) else r
        for i, r in enumerate(rows)])
    (tmp_path / "c.yaml").write_text(CONFIG)
    assert main(["bench", "-c", str(tmp_path / "c.yaml"), "--systems", "bad",
                 "--dataset", str(tmp_path / "t.jsonl"), "--out", str(tmp_path / "o"),
                 "--no-plot"]) == 0
    err = capsys.readouterr().err
    assert "chorus bench: bad: 3 of 12 items failed" in err
    assert ("3 x model 'bad': the item has no outcome for 'bad' (first: item i2)") in err
    assert "other message" not in err


def test_bench_says_when_exact_match_misses_answers_in_sentences(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A table of zeros from exact match, where the answers say the reference in a
    # sentence, says so and names the scorers that read such answers.
    (tmp_path / "c.yaml").write_text("""
models:
  talky: {provider: scripted, rules: {France: The capital of France is Paris., two: Four.}}
  terse: {provider: scripted, rules: {France: Paris, two: "4"}}
""")
    (tmp_path / "d.jsonl").write_text(
        '{"id": "fr", "prompt": "Capital of France?", "reference": "Paris"}\n'
        '{"id": "sum", "prompt": "What is two plus two?", "reference": "4"}\n')
    assert main(["bench", "-c", str(tmp_path / "c.yaml"), "--systems", "talky,terse",
                 "--dataset", str(tmp_path / "d.jsonl"), "--out", str(tmp_path / "o"),
                 "--no-plot"]) == 0
    err = capsys.readouterr().err
    assert ("chorus bench: note: talky: 1 of its 2 answers scored 0 by exact match hold the "
            "reference in a longer answer (first: item fr, 'The capital of France is "
            "Paris.')") in err
    assert "terse:" not in err  # right by exact match: nothing to say
    assert "use --scorer contains (the reference as words" in err
    report = (tmp_path / "o" / "report.md").read_text()
    assert "### Scoring" in report and "talky: 1 of its 2 answers scored 0" in report
    # Another scorer: no such note.
    assert main(["bench", "-c", str(tmp_path / "c.yaml"), "--systems", "talky",
                 "--dataset", str(tmp_path / "d.jsonl"), "--out", str(tmp_path / "o"),
                 "--no-plot", "--scorer", "numeric"]) == 0
    assert "exact match" not in capsys.readouterr().err
    # The scorer it names reads the sentence as right, and the terse answer too.
    assert main(["bench", "-c", str(tmp_path / "c.yaml"), "--systems", "talky,terse",
                 "--dataset", str(tmp_path / "d.jsonl"), "--out", str(tmp_path / "o"),
                 "--no-plot", "--scorer", "contains", "--json", str(tmp_path / "b.json")]) == 0
    got = {s["system"]: s["quality"] for s in json.loads((tmp_path / "b.json").read_text())}
    assert got == {"talky": 0.5, "terse": 1.0}   # "Four." does not hold "4"


def test_feedback_moves_weights_and_saves(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    _table(tmp_path / "t.jsonl")
    (tmp_path / "c.yaml").write_text(CONFIG)
    code = main(["feedback", "-c", str(tmp_path / "c.yaml"), "-s", "ens", "--outcomes",
                 str(tmp_path / "t.jsonl"), "--json"])
    assert code == 0
    weights = json.loads(capsys.readouterr().out)["weights"]
    assert weights["good"] > 5 * weights["bad"]
    saved = json.loads((tmp_path / "w.json").read_text())["weights"]
    assert saved == pytest.approx(weights)
    code = main(["feedback", "-c", str(tmp_path / "c.yaml"), "-s", "ens", "--model", "bad",
                 "--reward", "1", "--json"])
    assert code == 0
    after = json.loads(capsys.readouterr().out)["weights"]
    assert after["bad"] > weights["bad"]
    assert main(["feedback", "-c", str(tmp_path / "c.yaml"), "-s", "vote", "--model", "good",
                 "--reward", "1"]) == 1
    assert "holds no weighted ensemble" in capsys.readouterr().err
    # A table whose models are none of the ensemble's: refused, the weights left alone.
    write_outcomes(tmp_path / "other.jsonl", [
        OutcomeItem("x", "q", None, None, {"gpt-9": Outcome(1.0, 0.0, "x", 1)})])
    saved = (tmp_path / "w.json").read_text()
    assert main(["feedback", "-c", str(tmp_path / "c.yaml"), "-s", "ens", "--outcomes",
                 str(tmp_path / "other.jsonl")]) == 1
    assert ("other.jsonl: no recorded score is for a model of 'ens' (bad, good); the table "
            "has gpt-9") in capsys.readouterr().err
    assert (tmp_path / "w.json").read_text() == saved


def test_outcomes_convert_and_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = small_routellm_gsm8k(tmp_path / "data", 40)
    table = tmp_path / "g.jsonl"
    assert main(["outcomes", "convert", "routellm-gsm8k", str(folder), "-o", str(table)]) == 0
    n = len(read_outcomes(table))
    assert main(["outcomes", "split", str(table), "--train", str(tmp_path / "tr.jsonl"),
                 "--test", str(tmp_path / "te.jsonl"), "--test-share", "0.25"]) == 0
    train, test = read_outcomes(tmp_path / "tr.jsonl"), read_outcomes(tmp_path / "te.jsonl")
    assert len(train) + len(test) == n and len(test) == round(n * 0.25)
    assert not {r.id for r in train} & {r.id for r in test}
    # A split that would leave a part empty is refused, and writes nothing.
    capsys.readouterr()
    (tmp_path / "empty.jsonl").write_text("", "utf-8")
    for source, extra, want in (
            (tmp_path / "empty.jsonl", [], "empty.jsonl: 0 item(s) at --test-share 0.5 "
                                           "leave the test part empty"),
            (table, ["--limit", "1"], "g.jsonl: 1 item(s) at --test-share 0.5 leave the "
                                      "test part empty"),
            (table, ["--limit", "2", "--test-share", "0.9"], "leave the training part")):
        assert main(["outcomes", "split", str(source), "--train", str(tmp_path / "a.jsonl"),
                     "--test", str(tmp_path / "b.jsonl"), *extra]) == 1
        assert want in capsys.readouterr().err
    assert not (tmp_path / "a.jsonl").exists() and not (tmp_path / "b.jsonl").exists()


@pytest.mark.embeddings
def test_router_fit_and_eval_on_minilm(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sentence_transformers")
    folder = small_routellm_gsm8k(tmp_path / "data", 80)
    table = tmp_path / "g.jsonl"
    assert main(["outcomes", "convert", "routellm-gsm8k", str(folder), "-o", str(table)]) == 0
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    router = tmp_path / "routers" / "knn"
    assert main(["router", "fit", "--outcomes", str(table), "--out", str(router),
                 "--kind", "knn", "--k", "5"]) == 0
    assert (router / "router.json").is_file()
    # The embeddings are cached in the user's cache folder, not beside the router or in
    # the working folder; the step says what it did.
    cached = list((tmp_path / "cache" / "chorus" / "embeddings").glob("emb-*.npy"))
    assert len(cached) == 1
    assert not list(tmp_path.rglob("routers/**/emb-*.npy")) and not list(work.iterdir())
    fitted = capsys.readouterr()
    err = fitted.err
    assert "embedding 75 prompts ..." in err and "embedding 75 prompts: done in" in err
    assert "note:" not in err  # every score and cost is recorded
    # GPT-4's calls cost more for longer problems: the fit says how it priced them, and
    # the saved router prices so.
    saved = json.loads((router / "router.json").read_text())
    areas = saved["training"]["price_chosen_from"]
    how = ("priced by prompt length" if "price_by_length" in saved
           else "priced at each model's mean cost")
    assert (f"  {how}: held-out curve area {areas['by_length']:.4f} by length, "
            f"{areas['mean']:.4f} at mean costs") in fitted.out
    assert ("price_by_length" in saved) == (areas["by_length"] > areas["mean"])
    assert main(["router", "eval", "--router", str(router), "--outcomes", str(table),
                 "--json", str(tmp_path / "m.json")]) == 0
    assert list((tmp_path / "cache" / "chorus" / "embeddings").glob("emb-*.npy")) == cached
    assert not list(work.iterdir())
    out = capsys.readouterr().out
    assert "APGR" in out and "CPT(50%)" in out
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert {"apgr", "cpt50", "cpt80", "aiq", "curve", "by_calls"} <= set(metrics)
    assert metrics["priced_by_length"] == ("price_by_length" in saved)
    assert ("each call priced by its prompt's length" if metrics["priced_by_length"]
            else "each call at its model's mean cost") in out
    assert metrics["strong"] == "gpt-4-1106-preview"
    calls = metrics["by_calls"]
    assert (f"  in calls to gpt-4-1106-preview, as RouteLLM counts (a random router: APGR "
            f"0.5): APGR {calls['apgr']:.3f}") in out
    assert list(router.glob("curve-*.png"))


def test_router_fit_names_an_unknown_model_before_embedding(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = _table(tmp_path / "t.jsonl")
    code = main(["router", "fit", "--outcomes", str(table), "--out", str(tmp_path / "r"),
                 "--models", "good,gpt-9"])
    err = capsys.readouterr().err
    assert code != 0
    assert "no outcomes recorded for 'gpt-9'; the table has good, bad" in err
    assert not list(tmp_path.glob("emb-*.npy")) and not (tmp_path / "r").exists()


def test_router_refuses_a_table_it_cannot_use_before_embedding_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Each error names the file to fix, and comes before the minutes of embedding.
    from chorus.cli import router_cmd

    def no_embedding(*_: object) -> None:
        raise AssertionError("embedded a table the router cannot use")

    table = _table(tmp_path / "t.jsonl")
    rows = read_outcomes(table)
    one = tmp_path / "one.jsonl"
    write_outcomes(one, [replace(r, outcomes={"good": r.outcomes["good"]}) for r in rows])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", "utf-8")
    assert main(["router", "fit", "--outcomes", str(table), "--out",
                 str(tmp_path / "r")]) == 0
    capsys.readouterr()
    monkeypatch.setattr(router_cmd, "_embed", no_embedding)
    cases = {("fit", empty): "empty.jsonl: the table has no items",
             ("fit", one): "one.jsonl: a learned router needs outcomes of at least two",
             ("eval", empty): "empty.jsonl: the table has no items",
             ("eval", one): "one.jsonl: no outcomes recorded for 'bad'; the table has good "
                            f"({tmp_path / 'r'} routes between"}
    for (action, path), want in cases.items():
        where = ["--out", str(tmp_path / "r2")] if action == "fit" else \
            ["--router", str(tmp_path / "r")]
        assert main(["router", action, "--outcomes", str(path), *where]) != 0
        err = capsys.readouterr().err
        assert want in err and err.count("\n") == 1
    assert not (tmp_path / "r2").exists()


def test_feedback_without_a_weights_file_is_an_error(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    _table(tmp_path / "t.jsonl")
    (tmp_path / "c.yaml").write_text(CONFIG.replace("    weights_file: w.json\n", ""))
    code = main(["feedback", "-c", str(tmp_path / "c.yaml"), "-s", "ens", "--model", "bad",
                 "--reward", "1"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert "'ens' has no weights_file" in err and "set `weights_file: PATH`" in err
    assert not (tmp_path / "w.json").exists()
