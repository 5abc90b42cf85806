"""chorus tune on a synthetic table: the replays it searches with decide as the patterns
do, the search finds the cheap path, and what it writes runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from chorus.config.builder import Config
from chorus.eval import _replay as rp
from chorus.eval.bench import run_bench
from chorus.eval.outcomes import Outcome, OutcomeItem, as_items, write_outcomes
from chorus.eval.scorers import make_scorer
from chorus.eval.tune import Search, pick_extract, search
from chorus.patterns.agreement import extractor
from chorus.routing.acceptance import AcceptanceModel, PriceModel
from chorus.routing.predictor import OutcomePredictor
from tests.patterns._fakes import TableEmbedder

PRICES = {"cheap": 1.0, "other": 1.5, "mid": 6.0, "strong": 20.0}


def _table(n: int, seed: int) -> tuple[list[OutcomeItem], np.ndarray]:
    """Multiple-choice items in two topics, 70 % on the first. The strong model is right
    85 % of the time; the two cheap ones 90 % on topic 0 and 35 % on topic 1, wrong in
    different ways, so their agreement says when to trust them; the middle one 60 %."""
    rng = np.random.default_rng(seed)
    topic = (rng.random(n) < 0.3).astype(int)  # topic 1 is the hard one
    x = np.eye(16)[topic * 3] + rng.normal(0, 0.3, (n, 16))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    p = {"cheap": np.where(topic == 0, 0.9, 0.35), "other": np.where(topic == 0, 0.9, 0.35),
         "mid": np.full(n, 0.6), "strong": np.full(n, 0.85)}
    rows = []
    for i in range(n):
        gold = "ABCD"[rng.integers(0, 4)]
        outs = {}
        for m, price in PRICES.items():
            right = rng.random() < p[m][i]
            wrong = [c for c in "ABCD" if c != gold]
            letter = gold if right else wrong[rng.integers(0, 3)]
            text = f"Let me think. The answer is ({letter})" if rng.random() > 0.05 else "hmm"
            # Output tokens vary by item and model (a priced check reads them).
            outs[m] = Outcome(float(right and text != "hmm"), price * 1e-3 * (1 + rng.random()),
                              text, 5 + (i * 7 + len(m) * 13) % 50)
        rows.append(OutcomeItem(str(i), f"question {i} on topic {topic[i]}", None, gold, outs))
    return rows, x


def test_pick_extract_finds_the_answer_letters() -> None:
    rows, _ = _table(100, 0)
    assert pick_extract(rows, list(PRICES)) == "choice"
    plain = [OutcomeItem(r.id, r.prompt, None, None,
                         {m: Outcome(o.score, o.cost_usd, f"free text {r.id}-{m}")
                          for m, o in r.outcomes.items()}) for r in rows]
    assert pick_extract(plain, list(PRICES)) is None
    # Graded scores (a judge's 0-1) are rarely equal between two models: what counts is
    # that both were right, or both wrong.
    rng = np.random.default_rng(0)
    graded = [OutcomeItem(r.id, r.prompt, None, r.reference,
                          {m: Outcome(round(0.2 + 0.6 * (o.score or 0.0)
                                            + float(rng.uniform(-0.15, 0.15)), 3),
                                      o.cost_usd, o.response)
                           for m, o in r.outcomes.items()}) for r in rows]
    assert pick_extract(graded, list(PRICES)) == "choice"


async def test_replays_decide_as_the_patterns_do(tmp_path: Path) -> None:
    rows, x = _table(120, 1)
    table_file = tmp_path / "t.jsonl"
    write_outcomes(table_file, rows)
    models = list(PRICES)
    t = rp.Table.of(rows, models, extractor("choice"))
    # Which answer the stage gave is a feature too (the live check extracts it).
    said = ["C", "A", "D", "B"]
    acc = AcceptanceModel.fit(x, rp.stage_features(t, [0, 1], answers=said)[0],
                              t.scores[:, 0] > 0.5, answers=said)
    acc.save(tmp_path / "accept")
    # With which member agrees, weighed against P(the strong model is right | prompt).
    feats2 = rp.stage_features(t, [0, 1, 2], by_member=True)[0]
    rival = AcceptanceModel.fit(x, np.zeros((len(rows), 0)), t.scores[:, 3] > 0.5, names=())
    acc2 = AcceptanceModel.fit(x, feats2, t.scores[:, 0] > 0.5,
                               members=["cheap", "other", "mid"]).with_rival(rival, 1.0)
    acc2.save(tmp_path / "accept2")
    # A single model's stage: its answer's text is read whole (the shape features).
    feats1 = rp.stage_features(t, [0], answers=said)[0]
    acc1 = AcceptanceModel.fit(x, feats1, t.scores[:, 0] > 0.5, shape=True, answers=said)
    assert acc1.reads_text and feats1.shape[1] == len(acc1.features)
    acc1.save(tmp_path / "accept1")
    # The same, weighing the escalation's price predicted from the stage's output tokens.
    price = PriceModel.fit(x, t.stage_tokens([0]), t.costs[:, 3])
    acc1p = acc1.with_price(price, 1.0)
    acc1p.save(tmp_path / "accept1p")
    doc = {
        "models": {m: {"provider": "replay", "outcomes": "t.jsonl", "model": m} for m in models},
        "systems": {
            "cons": {"kind": "consensus", "models": ["cheap", "other", "mid"],
                     "threshold": 0.66, "escalate_to": "strong", "extract": "choice"},
            "wvote": {"kind": "vote", "models": ["strong", "mid", "cheap"], "by": "weight",
                      "weights": {"strong": 1.5, "mid": 0.5, "cheap": 0.6},
                      "extract": "choice"},
            "casc": {"kind": "cascade", "stages": [
                {"model": {"kind": "vote", "models": ["cheap", "other"], "extract": "choice"},
                 "check": {"type": "learned", "path": "accept", "threshold": 0.6,
                           "extract": "choice"}},
                {"model": "strong"}]},
            "casc2": {"kind": "cascade", "stages": [
                {"model": {"kind": "vote", "models": ["cheap", "other", "mid"],
                           "extract": "choice"},
                 "check": {"type": "learned", "path": "accept2", "threshold": 0.55,
                           "extract": "choice"}},
                {"model": "strong"}]},
            "casc1": {"kind": "cascade", "stages": [
                {"model": "cheap", "check": {"type": "learned", "path": "accept1",
                                             "threshold": 0.5, "extract": "choice"}},
                {"model": "strong"}]},
            "casc1p": {"kind": "cascade", "stages": [
                {"model": "cheap", "check": {"type": "learned", "path": "accept1p",
                                             "threshold": 0.8, "extract": "choice"}},
                {"model": "strong"}]},
        },
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(doc), "utf-8")
    cfg = Config.load(tmp_path / "c.yaml")
    systems = {n: cfg.get(n) for n in ("cons", "wvote", "casc", "casc2", "casc1", "casc1p")}
    # The learned check embeds live; here through a fixed table of vectors.
    for n in ("casc", "casc2", "casc1", "casc1p"):
        check = systems[n].stages[0].check  # type: ignore[attr-defined]
        check.embedder = TableEmbedder({r.prompt: x[i] for i, r in enumerate(rows)})
    res = await run_bench(systems, as_items(rows),
                          make_scorer("recorded", outcomes={r.id: r for r in rows}))
    strong = rp.single(t, 3)
    p = acc.predict(x, rp.stage_features(t, [0, 1], answers=said)[0])
    assert AcceptanceModel.load(tmp_path / "accept").answers == tuple(said)
    loaded = AcceptanceModel.load(tmp_path / "accept2")
    assert loaded.members == ("cheap", "other", "mid") and loaded.gain == 1.0
    p2 = loaded.score(x, feats2)
    assert np.allclose(p2, acc2.score(x, feats2))
    # The rival changes the decision: not the stage's P(right) alone.
    assert not np.allclose(p2, acc2.predict(x, feats2))
    p1 = AcceptanceModel.load(tmp_path / "accept1").predict(x, feats1)
    assert np.allclose(p1, acc1.predict(x, feats1))
    loaded1p = AcceptanceModel.load(tmp_path / "accept1p")
    assert loaded1p.priced and loaded1p.price_weight == 1.0
    p1p = loaded1p.score(x, feats1, t.stage_tokens([0]))
    assert np.allclose(p1p, acc1p.score(x, feats1, t.stage_tokens([0])))
    # The price changes the decision: not the order of P(right) alone.
    assert not np.array_equal(np.argsort(p1p), np.argsort(p1))
    expected = {
        "casc1p": rp.accepted(t, [0], p1p >= 0.8, strong),
        "casc1": rp.accepted(t, [0], p1 >= 0.5, strong),
        "casc2": rp.accepted(t, [0, 1, 2], p2 >= 0.55, strong),
        "cons": rp.consensus(t, [0, 1, 2], 0.66, strong),
        "wvote": rp.voted(t, [3, 2, 0], [1.5, 0.5, 0.6]),
        "casc": rp.accepted(t, [0, 1], p >= 0.6, strong),
    }
    for name, run in expected.items():
        got = np.array([r.score for r in res[name]])
        cost = np.array([r.cost_usd for r in res[name]])
        assert np.allclose(got, run.score), name
        assert np.allclose(cost, run.cost), name
    # The cascade did accept some cheap answers and escalate others.
    assert 0 < (p >= 0.6).mean() < 1
    assert 0 < (p2 >= 0.55).mean() < 1
    assert 0 < (p1 >= 0.5).mean() < 1
    assert 0 < (p1p >= 0.8).mean() < 1


def _worded(rows: list[OutcomeItem], *, unique: bool) -> list[OutcomeItem]:
    """The table with each answer a bare word ("alpha" for A; no letter to extract), or,
    ``unique``, a sentence that never repeats."""
    words = dict(zip("ABCD", ("alpha", "bravo", "charlie", "delta"), strict=True))

    def text(r: OutcomeItem, m: str, o: Outcome) -> str:
        word = words.get((o.response or "")[-2:-1], "unsure")
        return f"{m} on item {r.id} thinks of {word}" if unique else word

    return [OutcomeItem(r.id, r.prompt, None, None,
                        {m: Outcome(o.score, o.cost_usd, text(r, m, o), o.output_tokens)
                         for m, o in r.outcomes.items()}) for r in rows]


def test_agreement_is_searched_where_whole_answers_repeat_as_labels() -> None:
    rows, x = _table(600, 5)
    labels, free = _worded(rows, unique=False), _worded(rows, unique=True)
    assert pick_extract(labels, list(PRICES)) is None
    assert pick_extract(free, list(PRICES)) is None
    found = search(labels, x, list(PRICES), extract=None, seed=0)
    agreeing = [c for c in found.candidates if c.family == "agreement cascade"]
    assert agreeing and all("extract" not in c.spec for c in agreeing)
    # The cheap pair's agreement on a bare word is the same signal as on a letter.
    assert any(c.quality >= 0.8 and "cheap" in c.spec["models"] for c in agreeing)
    found = search(free, x, list(PRICES), extract=None, seed=0)
    assert not [c for c in found.candidates if c.family == "agreement cascade"]


def test_models_right_less_than_half_the_time_still_vote_on_ten_options() -> None:
    """Five models, each right 40 % of the time on ten-option questions and wrong at
    random: none is right half the time, yet their plurality is right most of the time."""
    rng = np.random.default_rng(7)
    letters = "ABCDEFGHIJ"
    rows = []
    for i in range(400):
        gold = letters[rng.integers(0, 10)]
        outs = {}
        for j in range(5):
            right = rng.random() < 0.4
            letter = gold if right else rng.choice([c for c in letters if c != gold])
            outs[f"m{j}"] = Outcome(float(right), 1e-3 * (j + 1), f"The answer is ({letter})",
                                    20)
        rows.append(OutcomeItem(str(i), f"question {i}", None, gold, outs))
    x = rng.normal(size=(400, 8))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    found = search(rows, x, [f"m{j}" for j in range(5)], extract="choice", seed=0)
    best_single = max(c.quality for c in found.candidates if c.family == "single")
    votes = [c for c in found.candidates if c.family == "weighted vote"]
    assert votes and max(c.quality for c in votes) >= best_single + 0.1, (
        best_single, [(c.name, c.quality) for c in votes])
    assert all(w > 0 for c in votes if "weights" in c.spec for w in c.spec["weights"].values())


def test_answer_classes_counts_the_answers_a_question_may_have() -> None:
    from chorus.eval.answer_kind import answer_classes

    def table(answers: list[str], kind: str) -> rp.Table:
        rows = [OutcomeItem(str(i), "q", None, None, {"m": Outcome(1.0, 0.1, a)})
                for i, a in enumerate(answers)]
        return rp.Table.of(rows, ["m"], extractor(kind))  # type: ignore[arg-type]

    assert answer_classes(table(["yes", "no", "yes"], "yes_no")) == 2
    assert answer_classes(table([f"({c})" for c in "ABCDEFGHIJ"], "choice")) == 10
    assert answer_classes(table([f"({c})" for c in "ABC"], "choice")) == 3
    # Numbers have no end, and real mistakes cluster: at most ten.
    assert answer_classes(table([str(n) for n in range(50)], "number")) == 10
    assert answer_classes(table(["nothing to read"], "choice")) == 2


def test_search_finds_the_cheap_path_and_keeps_only_the_frontier() -> None:
    rows, x = _table(1200, 2)
    found = search(rows, x, list(PRICES), extract="choice", seed=0)
    assert found.strongest == "strong"
    families = {c.family for c in found.candidates}
    assert {"single", "agreement cascade", "learned cascade", "learned router"} <= families
    front = found.front
    assert [c.cost for c in front] == sorted(c.cost for c in front)
    assert all(b.quality > a.quality for a, b in zip(front, front[1:], strict=False))
    strong = next(c for c in found.candidates if c.name == "single-strong")
    # Agreement of the cheap pair tells when they are right: some system on the frontier
    # comes within 0.02 of the strong model for at most 60 % of its cost.
    assert any(c.quality >= strong.quality - 0.02 and c.cost <= 0.6 * strong.cost
               for c in front), [(c.name, c.quality, c.cost) for c in front]
    # Nothing on the frontier is beaten by any candidate.
    for c in front:
        assert not any(o.quality > c.quality and o.cost <= c.cost for o in found.candidates)


def test_cli_tune_writes_a_frontier_that_bench_reproduces(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("sentence_transformers")
    from chorus.cli.main import main

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    rows, _ = _table(450, 3)
    # One training item without the middle model's cost: tune says so and counts it $0.
    first = rows[0]
    rows[0] = OutcomeItem(first.id, first.prompt, first.category, first.reference,
                          {**first.outcomes, "mid": Outcome(first.outcomes["mid"].score, None,
                                                            first.outcomes["mid"].response)})
    write_outcomes("train.jsonl", rows[:300])
    write_outcomes("test.jsonl", rows[300:])
    assert main(["tune", "--outcomes", "train.jsonl", "--test", "test.jsonl",
                 "--out", "tuned"]) == 0
    out, err = capsys.readouterr()
    assert ("note: train.jsonl: mid: no cost_usd on 1 of 300 items (counted as $0)"
            in err), err
    assert "test.jsonl: mid" not in err
    # The search, minutes on a large table, says which part of it is running.
    for phase in ("singles", "weighted votes", "learned-acceptance cascades",
                  "learned routers"):
        assert f"  {phase} (at " in err, err
    front = json.loads(Path("tuned/frontier.json").read_text())
    assert front and all(f["split"] == "test" and set(f) >= {
        "name", "kind", "quality", "quality_ci", "cost_usd", "calls_per_item"} for f in front)
    assert "recommended: " in out and "on the frontier" in out
    # What the frontier buys against the strongest model alone, on the test table.
    strong_q = sum(r.outcomes["strong"].score or 0.0 for r in rows[300:]) / 150
    assert f"strong alone on the test table: quality {strong_q:.3f}" in out
    assert "  cheapest at least as good: " in out and "  best at most half its cost: " in out
    cheapest = out.split("  cheapest at least as good: ")[1].split(" (")[0]
    assert cheapest == "none on the frontier" or next(
        f for f in front if f["name"] == cheapest)["quality"] >= strong_q
    rec = out.split("recommended: ")[1].split(":")[0]
    assert rec in {f["name"] for f in front}
    text = Path("tuned/systems.yaml").read_text()
    doc = yaml.safe_load(text)
    assert set(doc["systems"]) == {f["name"] for f in front}
    # A cascade that is both a system and a router's route is written out both times,
    # never as a YAML anchor and alias (&id001 / *id001) a reader has to chase.
    assert "&id0" not in text and "*id0" not in text
    # Every learned part travels with the config, and bench reproduces each figure (the
    # learned ones embed live here).
    learned = [f["name"] for f in front if f["name"].startswith(("cascade-", "router"))][:2]
    for name in learned or [front[-1]["name"]]:
        assert main(["bench", "-c", "tuned/systems.yaml", "--systems", name, "--dataset",
                     "test.jsonl", "--json", "b.json", "--no-plot", "--out", "b"]) == 0
        got = json.loads(Path("b.json").read_text())[0]
        want = next(f for f in front if f["name"] == name)
        assert got["quality"] == pytest.approx(want["quality"])
        assert got["cost_usd"] == pytest.approx(want["cost_usd"])
    # A budget: the recommendation costs at most that share of the strongest model.
    capsys.readouterr()
    assert main(["tune", "--outcomes", "train.jsonl", "--test", "test.jsonl", "--out", "t2",
                 "--max-cost-share", "0.4"]) == 0
    out = capsys.readouterr().out
    rec = out.split("recommended: ")[1].split(":")[0]
    strong = sum(r.outcomes["strong"].cost_usd or 0.0 for r in rows[300:])
    front = json.loads(Path("t2/frontier.json").read_text())
    assert next(f for f in front if f["name"] == rec)["cost_usd"] <= 0.4 * strong
    assert "costing at most 0.4 of strong" in out


def test_cli_tune_names_unknown_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    from chorus.cli.main import main

    monkeypatch.chdir(tmp_path)
    rows, _ = _table(60, 4)
    write_outcomes("t.jsonl", rows)
    assert main(["tune", "--outcomes", "t.jsonl", "--test", "t.jsonl", "--out", "o",
                 "--models", "cheap,gpt-9"]) != 0
    assert "no outcomes recorded for 'gpt-9'" in capsys.readouterr().err
    assert not Path("o").exists()


def test_cli_tune_refuses_a_table_it_cannot_search_before_embedding_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # Each error names the file to fix, and comes before the minutes of embedding.
    from chorus.cli import tune_cmd
    from chorus.cli.main import main

    def no_embedding(*_: object) -> None:
        raise AssertionError("embedded a table tune cannot search")

    monkeypatch.setattr(tune_cmd, "_embed", no_embedding)
    monkeypatch.chdir(tmp_path)
    rows, _ = _table(60, 4)
    write_outcomes("t.jsonl", rows)
    write_outcomes("few.jsonl", rows[:30])
    write_outcomes("one.jsonl", [OutcomeItem(r.id, r.prompt, None, r.reference,
                                             {"cheap": r.outcomes["cheap"]}) for r in rows])
    Path("empty.jsonl").write_text("", "utf-8")
    cases = {("empty.jsonl", "t.jsonl"): "empty.jsonl: the table has no items",
             ("t.jsonl", "empty.jsonl"): "empty.jsonl: the table has no items",
             ("few.jsonl", "t.jsonl"): "few.jsonl: tune needs at least 50 training items, "
                                       "got 30",
             ("one.jsonl", "t.jsonl"): "one.jsonl: tune needs outcomes of at least two",
             ("t.jsonl", "one.jsonl"): "one.jsonl: no outcomes recorded for 'other', 'mid'"}
    for (train, test), want in cases.items():
        assert main(["tune", "--outcomes", train, "--test", test, "--out", "o"]) != 0
        assert want in capsys.readouterr().err
    assert not Path("o").exists()


def test_cli_tune_says_when_the_table_records_no_cost(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from chorus.cli.main import main

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    rows, _ = _table(120, 6)
    free = [OutcomeItem(r.id, r.prompt, None, r.reference,
                        {m: Outcome(o.score, None, o.response, o.output_tokens)
                         for m, o in r.outcomes.items()}) for r in rows]
    write_outcomes("train.jsonl", free[:80])
    write_outcomes("test.jsonl", free[80:])
    assert main(["tune", "--outcomes", "train.jsonl", "--test", "test.jsonl",
                 "--out", "t"]) == 0
    err = capsys.readouterr().err
    assert "note: train.jsonl records no cost: every system costs $0" in err
    assert "are also training items" not in err
    assert main(["tune", "--outcomes", "train.jsonl", "--test", "train.jsonl",
                 "--out", "t"]) == 0
    assert ("note: 80 of the 80 test items are also training items (the same id)"
            in capsys.readouterr().err)
    assert "cheap: no cost_usd on 80 of 80 items (counted as $0)" in err
    front = json.loads(Path("t/frontier.json").read_text())
    assert all(f["cost_usd"] == 0 for f in front)


async def test_the_embedding_cache_is_keyed_by_how_the_vectors_were_made(
        tmp_path: Path) -> None:
    from chorus.eval.routers import embed_rows

    rows, x = _table(30, 5)
    table = {r.prompt: x[i] for i, r in enumerate(rows)}
    first = await embed_rows(rows, TableEmbedder(table), tmp_path)
    assert np.allclose(first, x) and len(list(tmp_path.glob("emb-*.npy"))) == 1
    # Another embedder with the same name makes other vectors: it must not read these.
    other = TableEmbedder({k: -v for k, v in table.items()})
    other.backend = "other"  # type: ignore[attr-defined]
    second = await embed_rows(rows, other, tmp_path)
    assert np.allclose(second, -x) and len(list(tmp_path.glob("emb-*.npy"))) == 2
    # The same embedder again reads its cache.
    again = TableEmbedder({})
    assert np.allclose(await embed_rows(rows, again, tmp_path), x)


async def test_embedding_a_table_sends_the_local_embedder_bulk_sized_calls() -> None:
    # Calls below BULK texts stay on the numpy encoder, several times slower per text
    # than the torch bulk path: a table's prompts go in calls of at least BULK.
    from chorus.embeddings.local import BULK
    from chorus.eval.routers import embed_rows

    rows, x = _table(BULK * 2 + 7, 6)
    embedder = TableEmbedder({r.prompt: x[i] for i, r in enumerate(rows)})
    got = await embed_rows(rows, embedder)
    assert np.allclose(got, x)
    sizes = [len(b) for b in embedder.batches]
    assert sum(sizes) == len(rows) and min(sizes[:-1] or [BULK]) >= BULK


def test_a_shipped_threshold_accepts_the_share_the_folds_chose() -> None:
    # The folds' scores and the shipped parts' differ in scale; each shipped threshold
    # accepts, on the training items, the share of them the folds' threshold accepted.
    rows, x = _table(600, 7)
    models = list(PRICES)
    found = search(rows, x, models, extract="choice", seed=0)
    t = rp.Table.of(rows, models, extractor("choice"))
    checked = 0
    for c in found.candidates:
        if c.family != "learned cascade":
            continue
        assert isinstance(c.spec, dict)
        stage = c.spec["stages"][0]
        members = ([models.index(stage["model"])] if isinstance(stage["model"], str)
                   else [models.index(m) for m in stage["model"]["models"]])
        model = c.parts[stage["check"]["path"]]
        assert isinstance(model, AcceptanceModel)
        feats, who = rp.stage_features(t, members, by_member=bool(model.members),
                                       answers=model.answers)
        shipped = model.score(x, feats, t.stage_tokens(members)) >= stage["check"]["threshold"]
        shipped &= who >= 0  # an answer without a label escalates whatever the score
        stage_cost = t.costs[:, members].sum(axis=1)
        chosen = np.isclose(c.held_out.cost, stage_cost)  # not escalated
        assert abs(shipped.mean() - chosen.mean()) <= 2.5 / len(rows), c.name
        checked += 1
    assert checked >= 5


def test_learned_vote_weights_do_not_count_models_that_err_alike_twice() -> None:
    # Three copies of one model (right 65 % of the time) and two independent ones (70 %):
    # log-odds weights let the copies outvote the rest, weights learned from outcomes
    # give the three together about one model's say.
    from chorus.eval.ensembles import log_odds
    from chorus.eval.tune import learned_weights

    rng = np.random.default_rng(8)

    def answer(gold: str, p: float) -> str:
        return gold if rng.random() < p else [c for c in "ABCD" if c != gold][
            rng.integers(0, 3)]

    rows = []
    for i in range(1600):
        gold = "ABCD"[rng.integers(0, 4)]
        a = answer(gold, 0.65)
        outs = {m: Outcome(float(x == gold), 1e-3, f"The answer is ({x})", 5)
                for m, x in (("a1", a), ("a2", a), ("a3", a), ("b", answer(gold, 0.7)),
                             ("c", answer(gold, 0.7)))}
        rows.append(OutcomeItem(str(i), f"q{i}", None, gold, outs))
    models = ["a1", "a2", "a3", "b", "c"]
    t = rp.Table.of(rows, models, extractor("choice"))
    fit, test = t.take(np.arange(800)), t.take(np.arange(800, 1600))
    learned = learned_weights(fit, range(5))
    assert sum(learned.get(j, 0.0) for j in (0, 1, 2)) < 1.5 * learned[3]
    by_log_odds = rp.voted(test, range(5), [log_odds(float(fit.scores[:, j].mean()))
                                            for j in range(5)])
    by_learning = rp.voted(test, list(learned), list(learned.values()))
    assert by_learning.quality >= by_log_odds.quality + 0.05, (by_learning.quality,
                                                                by_log_odds.quality)


def _checks(found: Search) -> list[AcceptanceModel]:
    """The learned checks of every candidate tune searched."""
    return [p for c in found.candidates for p in c.parts.values()
            if isinstance(p, AcceptanceModel)]


def test_a_check_weighs_which_answer_a_biased_model_gave() -> None:
    # The cheap model is right 85 % of the time when it answers "yes", 35 % when "no"
    # (texts of one length: the shape features cannot tell them apart),
    # on prompts whose embeddings say nothing; numbers it writes rarely repeat.
    from chorus.eval.answer_kind import common_answers

    rng = np.random.default_rng(3)
    n = 600
    says_yes = rng.random(n) < 0.5
    right = np.where(says_yes, rng.random(n) < 0.85, rng.random(n) < 0.35)
    rows = [OutcomeItem(str(i), f"q{i}", None, None, {
        "cheap": Outcome(float(right[i]), 1e-4, "yes" if says_yes[i] else "no.", 3),
        "sums": Outcome(1.0, 1e-4, f"The total is {i * 7}.", 9),
        "strong": Outcome(1.0, 1e-2, "yes", 5)}) for i in range(n)]
    t = rp.Table.of(rows, ["cheap", "sums", "strong"], extractor("yes_no"))
    assert common_answers(t, [0]) == ["yes", "no"] or common_answers(t, [0]) == ["no", "yes"]
    t_numbers = rp.Table.of(rows, ["cheap", "sums", "strong"], extractor("number"))
    assert common_answers(t_numbers, [1]) == []  # every number once: no answer features
    x = rng.normal(size=(n, 8))
    said = common_answers(t, [0])
    fit, test = np.arange(n) < 400, np.arange(n) >= 400
    with_answers = AcceptanceModel.fit(x[fit], rp.stage_features(t, [0], answers=said)[0][fit],
                                       right[fit], shape=True, answers=said)
    without = AcceptanceModel.fit(x[fit], rp.stage_features(t, [0])[0][fit], right[fit],
                                  shape=True)
    p_with = with_answers.predict(x[test], rp.stage_features(t, [0], answers=said)[0][test])
    p_without = without.predict(x[test], rp.stage_features(t, [0])[0][test])
    yes = says_yes[test]
    assert p_with[yes].mean() > p_with[~yes].mean() + 0.3
    assert abs(p_without[yes].mean() - p_without[~yes].mean()) < 0.1
    # tune gives the checks it fits these features, for labels only: never for numbers.
    checks = _checks(search(rows, x, ["cheap", "strong"], extract="yes_no", seed=0))
    assert checks and all(set(p.answers) == {"yes", "no"} for p in checks)
    numeric = [OutcomeItem(r.id, r.prompt, None, None, {
        m: Outcome(o.score, o.cost_usd, str(i % 3), o.output_tokens)
        for m, o in r.outcomes.items()}) for i, r in enumerate(rows)]
    checks = _checks(search(numeric, x, ["cheap", "strong"], extract="number", seed=0))
    assert checks and all(p.answers == () for p in checks)


def _options_table(n: int, seed: int) -> tuple[list[OutcomeItem], np.ndarray, np.ndarray]:
    """Four-option questions whose right option is the most detailed one. The cheap model
    picks it on half of them and is then right 85 % of the time; elsewhere it is right
    35 % of the time. Its letters are spread evenly, its answers' texts alike, and the
    embeddings say nothing: only where its choice stands among the options tells."""
    rng = np.random.default_rng(seed)
    picks_longest = rng.random(n) < 0.5
    right = np.where(picks_longest, rng.random(n) < 0.85, rng.random(n) < 0.35)
    rows = []
    for i in range(n):
        long_at = int(rng.integers(0, 4))
        opts = ["a short one"] * 4
        opts[long_at] = "the long, detailed and careful option"
        pick = long_at if picks_longest[i] else (long_at + 1 + int(rng.integers(0, 3))) % 4
        prompt = f"Question {i}?\n" + "\n".join(f"{'ABCD'[k]}. {o}" for k, o in enumerate(opts))
        rows.append(OutcomeItem(str(i), prompt, None, None, {
            "cheap": Outcome(float(right[i]), 1e-4, f"The answer is ({'ABCD'[pick]})", 6),
            "strong": Outcome(1.0, 1e-2, "The answer is (A)", 6)}))
    return rows, rng.normal(size=(n, 8)), picks_longest


def test_a_check_weighs_where_the_chosen_option_stands() -> None:
    rows, x, longest = _options_table(600, 4)
    t = rp.Table.of(rows, ["cheap", "strong"], extractor("choice"))
    right = t.scores[:, 0] > 0.5
    fit, test = np.arange(600) < 400, np.arange(600) >= 400
    feats = rp.stage_features(t, [0], choices=True)[0]
    with_choices = AcceptanceModel.fit(x[fit], feats[fit], right[fit], shape=True,
                                       choices=True)
    assert with_choices.reads_choices and feats.shape[1] == len(with_choices.features)
    without = AcceptanceModel.fit(x[fit], rp.stage_features(t, [0])[0][fit], right[fit],
                                  shape=True)
    assert not without.reads_choices
    p_with = with_choices.predict(x[test], feats[test])
    p_without = without.predict(x[test], rp.stage_features(t, [0])[0][test])
    on = longest[test]
    assert p_with[on].mean() > p_with[~on].mean() + 0.3
    assert abs(p_without[on].mean() - p_without[~on].mean()) < 0.1
    # tune gives its checks these features where the prompts list options, and not where
    # they do not.
    checks = _checks(search(rows, x, ["cheap", "strong"], extract="choice", seed=0))
    assert checks and all(p.reads_choices for p in checks)
    bare = [OutcomeItem(r.id, f"question {r.id}", None, None, r.outcomes) for r in rows]
    checks = _checks(search(bare, x, ["cheap", "strong"], extract="choice", seed=0))
    assert checks and not any(p.reads_choices for p in checks)


async def test_a_check_reads_the_options_live_as_the_replay_does(tmp_path: Path) -> None:
    rows, x, _ = _options_table(200, 5)
    write_outcomes(tmp_path / "t.jsonl", rows)
    t = rp.Table.of(rows, ["cheap", "strong"], extractor("choice"))
    feats = rp.stage_features(t, [0], choices=True)[0]
    AcceptanceModel.fit(x, feats, t.scores[:, 0] > 0.5, shape=True, choices=True).save(
        tmp_path / "accept")
    model = AcceptanceModel.load(tmp_path / "accept")
    p = model.predict(x, feats)
    doc = {"models": {m: {"provider": "replay", "outcomes": "t.jsonl", "model": m}
                      for m in ("cheap", "strong")},
           "systems": {"casc": {"kind": "cascade", "stages": [
               {"model": "cheap", "check": {"type": "learned", "path": "accept",
                                            "threshold": 0.6, "extract": "choice"}},
               {"model": "strong"}]}}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(doc), "utf-8")
    casc = Config.load(tmp_path / "c.yaml").get("casc")
    casc.stages[0].check.embedder = TableEmbedder(  # type: ignore[attr-defined]
        {r.prompt: x[i] for i, r in enumerate(rows)})
    res = await run_bench({"casc": casc}, as_items(rows),
                          make_scorer("recorded", outcomes={r.id: r for r in rows}))
    want = rp.accepted(t, [0], p >= 0.6, rp.single(t, 1))
    assert 0 < (p >= 0.6).mean() < 1
    assert np.allclose([r.score for r in res["casc"]], want.score)
    assert np.allclose([r.cost_usd for r in res["casc"]], want.cost)


def test_routers_are_cross_fitted_and_judged_on_every_training_item(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Judged on one held-out slice, the best points of a router's knob sweep were kept
    # as if they were what the router does: noise that pushed better systems off the
    # frontier. Each fold is now routed by a router fitted on the other folds.
    from chorus.eval import tune

    rows, x = _table(300, 6)
    seen: list[int] = []
    real_fit = tune.fit

    def counting(xs: np.ndarray, *args: object, **kwargs: object) -> object:
        seen.append(len(xs))
        return real_fit(xs, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(tune, "fit", counting)
    found = search(rows, x, list(PRICES), extract="choice", seed=0)
    routers = [c for c in found.candidates if c.family == "learned router"]
    assert routers and all(len(c.held_out.score) == 300 for c in routers)
    # Per family of routers: one fit per fold on the other two thirds, one on everything.
    assert seen and seen.count(300) * 3 == len(seen) - seen.count(300)
    assert all(190 <= s <= 210 for s in seen if s != 300)
    # The router each one ships is the one fitted on every training item.
    for c in routers:
        assert isinstance(c.spec, dict)
        shipped = c.parts[c.spec["classifier"]["path"]]
        assert isinstance(shipped, OutcomePredictor)
        assert shipped.training.train_items + shipped.training.holdout_items == 300
