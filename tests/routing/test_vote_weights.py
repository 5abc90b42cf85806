"""Vote weights that depend on the question: learned per region of the prompt space,
replayed by tune exactly as a live vote applies them, refused when they do not fit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from chorus.config.builder import Config
from chorus.core.errors import ConfigError
from chorus.core.types import Request
from chorus.eval import _replay as rp
from chorus.eval.bench import run_bench
from chorus.eval.outcomes import Outcome, OutcomeItem, as_items, write_outcomes
from chorus.eval.scorers import make_scorer
from chorus.eval.tune import learned_weights
from chorus.patterns.agreement import extractor
from chorus.routing.choice_shape import CHOICE_FEATURES
from chorus.routing.vote_weights import FLOOR, RegionWeights
from tests.patterns._fakes import TableEmbedder

MODELS = ["law", "maths", "generalist"]


def _table(n: int, seed: int) -> tuple[list[OutcomeItem], np.ndarray]:
    """Two kinds of question, far apart in the embedding space. The law model is right
    on 90 % of law questions and 30 % of maths ones, the maths model the other way
    round, the generalist on 60 % of both: only weights that know the kind pick well."""
    rng = np.random.default_rng(seed)
    kind = rng.integers(0, 2, n)
    x = np.eye(8)[kind * 4] + rng.normal(0, 0.2, (n, 8))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    rows = []
    for i in range(n):
        gold = "ABCD"[rng.integers(0, 4)]
        p = {"law": 0.9 if kind[i] == 0 else 0.3, "maths": 0.3 if kind[i] == 0 else 0.9,
             "generalist": 0.6}
        outs = {}
        for m in MODELS:
            letter = gold if rng.random() < p[m] else [c for c in "ABCD" if c != gold][
                rng.integers(0, 3)]
            outs[m] = Outcome(float(letter == gold), 1e-3, f"The answer is ({letter})", 5)
        rows.append(OutcomeItem(str(i), f"question {i} of kind {kind[i]}", None, gold, outs))
    return rows, x


def _fit(t: rp.Table, x: np.ndarray, regions: int = 2) -> RegionWeights:
    return RegionWeights.fit(x, t.labels, t.scores > 0.5, MODELS, regions=regions)


def test_region_weights_follow_who_is_right_where() -> None:
    rows, x = _table(1200, 0)
    t = rp.Table.of(rows, MODELS, extractor("choice"))
    fit, test = np.arange(600), np.arange(600, 1200)
    weights = _fit(t.take(fit), x[fit])
    assert weights.table.shape == (2, 3) and np.all(weights.table >= FLOOR)
    by_region = rp.voted(t.take(test), range(3), weights.rows(x[test]))
    overall = learned_weights(t.take(fit), range(3))
    by_overall = rp.voted(t.take(test), list(overall), list(overall.values()))
    # About 0.9 when the region picks the specialist; one set of weights cannot.
    assert by_region.quality >= by_overall.quality + 0.1, (by_region.quality,
                                                            by_overall.quality)
    # In the law questions' region the law model outweighs the maths one, and the reverse.
    region_of = weights.region(x[fit])
    kinds = np.array([int(r.prompt[-1]) for r in rows])[fit]
    law = int(np.bincount(region_of[kinds == 0]).argmax())
    maths = int(np.bincount(region_of[kinds == 1]).argmax())
    assert law != maths
    assert weights.table[law, 0] > weights.table[law, 1]
    assert weights.table[maths, 1] > weights.table[maths, 0]


def test_region_weights_save_load_and_refuse_a_broken_folder(tmp_path: Path) -> None:
    rows, x = _table(300, 1)
    t = rp.Table.of(rows, MODELS, extractor("choice"))
    weights = _fit(t, x)
    back = RegionWeights.load(weights.save(tmp_path / "w"))
    assert back.members == tuple(MODELS)
    assert np.allclose(back.rows(x), weights.rows(x))
    assert back.weights(x[0]) == pytest.approx(dict(zip(MODELS, weights.rows(x[:1])[0],
                                                        strict=True)))
    (tmp_path / "w" / "table.npy").unlink()
    with pytest.raises(ValueError, match="not saved region vote weights"):
        RegionWeights.load(tmp_path / "w")
    with pytest.raises(ValueError, match="at least 40 items"):
        RegionWeights.fit(x[:20], t.labels[:20], t.scores[:20] > 0.5, MODELS, regions=4)


def _config(tmp_path: Path, system: dict[str, object]) -> Path:
    doc = {"models": {m: {"provider": "replay", "outcomes": "t.jsonl", "model": m}
                      for m in MODELS},
           "systems": {"v": system}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(doc), "utf-8")
    return tmp_path / "c.yaml"


async def _live_vote(tmp_path: Path, rows: list[OutcomeItem], x: np.ndarray,
                     weights: RegionWeights) -> tuple[Any, dict[str, Any]]:
    """A live vote of ``MODELS`` with ``weights`` saved beside its config (replay
    models over ``t.jsonl``, embeddings from ``x``), and its bench results on ``rows``."""
    weights.save(tmp_path / "votes" / "w")
    cfg = Config.load(_config(tmp_path, {"kind": "vote", "models": MODELS, "by": "weight",
                                         "extract": "choice",
                                         "weights_by": {"path": "votes/w"}}))
    vote = cfg.get("v")
    vote.weights_embedder = TableEmbedder(  # type: ignore[attr-defined]
        {r.prompt: x[i] for i, r in enumerate(rows)})
    res = await run_bench({"v": vote}, as_items(rows),
                          make_scorer("recorded", outcomes={r.id: r for r in rows}))
    return vote, res


async def test_a_live_vote_applies_the_weights_as_the_replay_does(tmp_path: Path) -> None:
    rows, x = _table(200, 2)
    write_outcomes(tmp_path / "t.jsonl", rows)
    t = rp.Table.of(rows, MODELS, extractor("choice"))
    weights = _fit(t, x)
    vote, res = await _live_vote(tmp_path, rows, x, weights)
    expected = rp.voted(t, range(3), weights.rows(x))
    assert np.allclose([r.score for r in res["v"]], expected.score)
    assert expected.quality > 0.8
    # The answer's trace says which region chose the weights, and what they were.
    answer = await vote.complete(Request.of(rows[0].prompt))
    assert answer.trace is not None
    attrs = answer.trace.attributes
    assert attrs["region"] == int(weights.region(x[:1])[0])
    assert attrs["weights"] == pytest.approx(weights.weights(x[0]), abs=1e-4)


def test_weights_by_refuses_what_does_not_fit(tmp_path: Path) -> None:
    rows, x = _table(200, 3)
    write_outcomes(tmp_path / "t.jsonl", rows)
    t = rp.Table.of(rows, MODELS, extractor("choice"))
    _fit(t, x).save(tmp_path / "w")
    with pytest.raises(ConfigError, match="weights_by needs by: weight"):
        Config.load(_config(tmp_path, {"kind": "vote", "models": MODELS,
                                       "weights_by": {"path": "w"}})).get("v")
    with pytest.raises(ConfigError, match="region weights are for law, maths, generalist"):
        Config.load(_config(tmp_path, {"kind": "vote", "models": MODELS[:2], "by": "weight",
                                       "weights_by": {"path": "w"}})).get("v")
    with pytest.raises(ConfigError, match="not saved region vote weights"):
        Config.load(_config(tmp_path, {"kind": "vote", "models": MODELS, "by": "weight",
                                       "weights_by": {"path": "nowhere"}})).get("v")


def _options_table(n: int, seed: int) -> tuple[list[OutcomeItem], np.ndarray]:
    """Four-option questions whose right option is the most detailed one. Each of the
    three models is right 50 % of the time and otherwise picks a short option at random:
    when they split, the longest of their answers is the likelier one."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    rows = []
    for i in range(n):
        gold = int(rng.integers(0, 4))
        opts = ["short"] * 4
        opts[gold] = "a long and careful option"
        prompt = f"Question {i}?\n" + "\n".join(f"{'ABCD'[k]}. {o}" for k, o in enumerate(opts))
        outs = {}
        for m in MODELS:
            k = gold if rng.random() < 0.5 else [c for c in range(4) if c != gold][
                rng.integers(0, 3)]
            outs[m] = Outcome(float(k == gold), 1e-3, f"The answer is ({'ABCD'[k]})", 5)
        rows.append(OutcomeItem(str(i), prompt, None, None, outs))
    return rows, x


def test_region_weights_weigh_where_each_answer_stands_among_the_options(
        tmp_path: Path) -> None:
    rows, x = _options_table(1000, 4)
    t = rp.Table.of(rows, MODELS, extractor("choice"))
    fit, test = np.arange(600), np.arange(600, 1000)
    f = t.take(fit)
    plain = _fit(f, x[fit])
    weighed = RegionWeights.fit(x[fit], f.labels, f.scores > 0.5, MODELS, regions=2,
                                options=(f.prompts, f.keys))
    assert plain.choice is None and weighed.choice is not None
    # Being the longest option counts for the answer.
    assert dict(zip(CHOICE_FEATURES, weighed.choice, strict=True))["choice:longest"] > 0
    te = t.take(test)
    bonus = weighed.bonus_rows(te.prompts, te.keys, te.labels)
    assert bonus is not None and plain.bonus_rows(te.prompts, te.keys, te.labels) is None
    with_options = rp.voted(te, range(3), weighed.rows(x[test]), bonus)
    by_members = rp.voted(te, range(3), plain.rows(x[test]))
    assert with_options.quality >= by_members.quality + 0.1, (with_options.quality,
                                                               by_members.quality)
    back = RegionWeights.load(weighed.save(tmp_path / "w"))
    assert back.choice is not None and np.allclose(back.choice, weighed.choice)
    np.save(tmp_path / "w" / "choice.npy", np.zeros(3))
    with pytest.raises(ValueError, match="choice.npy holds 3 weights"):
        RegionWeights.load(tmp_path / "w")


async def test_a_live_vote_weighs_the_options_as_the_replay_does(tmp_path: Path) -> None:
    rows, x = _options_table(200, 5)
    write_outcomes(tmp_path / "t.jsonl", rows)
    t = rp.Table.of(rows, MODELS, extractor("choice"))
    weights = RegionWeights.fit(x, t.labels, t.scores > 0.5, MODELS, regions=2,
                                options=(t.prompts, t.keys))
    vote, res = await _live_vote(tmp_path, rows, x, weights)
    expected = rp.voted(t, range(3), weights.rows(x),
                        weights.bonus_rows(t.prompts, t.keys, t.labels))
    assert np.allclose([r.score for r in res["v"]], expected.score)
    # The options changed some winners: not the members' weights alone.
    assert not np.allclose(expected.score, rp.voted(t, range(3), weights.rows(x)).score)
    answer = await vote.complete(Request.of(rows[0].prompt))
    assert answer.trace is not None
    shown = answer.trace.attributes["option_bonus"]
    assert shown and all(shown[k] == pytest.approx(weights.bonus(rows[0].prompt, k), abs=1e-4)
                         for k in shown)
