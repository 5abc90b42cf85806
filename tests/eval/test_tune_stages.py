"""A cascade's cheap stage as a vote whose weights depend on the question: tune searches
it beside the plain vote, and the live cascade decides as the replay does."""

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from chorus.config import Config
from chorus.eval import _replay as rp
from chorus.eval.bench import run_bench
from chorus.eval.outcomes import Outcome, OutcomeItem, as_items, write_outcomes
from chorus.eval.scorers import make_scorer
from chorus.eval.tune import Candidate, search
from chorus.patterns.agreement import extractor
from chorus.routing.acceptance import AcceptanceModel, tally_features
from chorus.routing.vote_weights import RegionWeights
from tests.patterns._fakes import TableEmbedder

MODELS = ["a", "b", "c", "strong"]


def _table(n: int, seed: int) -> tuple[list[OutcomeItem], np.ndarray]:
    """Two topics, apart in the embedding. "a" is right 90 % of the time on topic 0 and
    40 % on topic 1, "b" the other way round, "c" 40 % on both; wrong answers fall on
    "A" or "B" (so two wrong ones often agree). The strong model, 20 times their price,
    is right 85 % of the time. A plain vote of the three follows the wrong pair where
    the reliable one stands alone; weights per topic follow the reliable one."""
    rng = np.random.default_rng(seed)
    topic = (rng.random(n) < 0.5).astype(int)
    x = np.eye(8)[topic * 4] + rng.normal(0, 0.2, (n, 8))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    p = {"a": np.where(topic == 0, 0.9, 0.4), "b": np.where(topic == 0, 0.4, 0.9),
         "c": np.full(n, 0.4), "strong": np.full(n, 0.85)}
    price = {"a": 1.0, "b": 1.0, "c": 1.0, "strong": 20.0}
    rows = []
    for i in range(n):
        outs = {}
        for m in MODELS:
            right = bool(rng.random() < p[m][i])
            letter = "D" if right else "AB"[int(rng.integers(0, 2))]
            outs[m] = Outcome(float(right), price[m] * 1e-3, f"The answer is ({letter})",
                              10 + i % 7)
        rows.append(OutcomeItem(str(i), f"question {i} on topic {topic[i]}", None, "D", outs))
    return rows, x


def _weighted(found: Any) -> list[Candidate]:
    return [c for c in found.candidates if c.family == "learned cascade"
            and any(isinstance(p, RegionWeights) for p in c.parts.values())]


def test_tune_searches_stages_whose_vote_weighs_members_by_region() -> None:
    rows, x = _table(900, 1)
    found = search(rows, x, MODELS, extract="choice", seed=0)
    weighted = _weighted(found)
    assert weighted and all("-w4" in c.name for c in weighted)
    plain = [c for c in found.candidates if c.family == "learned cascade"
             and c not in weighted and "+" in c.name]
    strong = next(c for c in found.candidates if c.name == "single-strong")

    def best(cands: list[Candidate]) -> float:
        return max(c.quality for c in cands if c.cost <= 0.4 * strong.cost)

    # At 40 % of the strong model's cost, the stage that knows whom to trust per topic
    # keeps right answers the plain vote overrules.
    assert best(weighted) >= best(plain) + 0.03, (best(weighted), best(plain))
    assert any(c in found.front for c in weighted)
    # Judged on every training item, out of fold.
    assert all(len(c.held_out.score) == 900 for c in weighted)


async def test_a_weighted_stage_cascade_runs_live_as_the_replay_does(tmp_path: Path) -> None:
    rows, x = _table(600, 2)
    found = search(rows, x, MODELS, extract="choice", seed=0)
    # The one with all three models in its stage: there a weighted vote's winner can
    # be a lone answer beside a pair that agrees.
    # (the middle one by cost, which accepts some answers and escalates others).
    three = sorted((c for c in _weighted(found)
                    if len(c.spec["stages"][0]["model"]["models"]) == 3),  # type: ignore[index]
                   key=lambda c: c.cost)
    cand = three[len(three) // 2]
    for path, part in cand.parts.items():
        part.save(tmp_path / path)
    write_outcomes(tmp_path / "t.jsonl", rows)
    doc = {"models": {m: {"provider": "replay", "outcomes": "t.jsonl", "model": m}
                      for m in MODELS},
           "systems": {"casc": cand.spec}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(doc), "utf-8")
    casc = Config.load(tmp_path / "c.yaml").get("casc")
    vectors = TableEmbedder({r.prompt: x[i] for i, r in enumerate(rows)})
    stage = casc.stages[0]  # type: ignore[attr-defined]
    stage.check.embedder = vectors
    stage.model.weights_embedder = vectors
    res = await run_bench({"casc": casc}, as_items(rows),
                          make_scorer("recorded", outcomes={r.id: r for r in rows}))
    # The replay of the shipped parts, fitted on every item.
    t = rp.Table.of(rows, MODELS, extractor("choice"))
    check = cand.spec["stages"][0]["check"]  # type: ignore[index]
    model = next(p for p in cand.parts.values() if isinstance(p, AcceptanceModel))
    weights = next(p for p in cand.parts.values() if isinstance(p, RegionWeights))
    w = weights.rows(x)
    members = [MODELS.index(m) for m in cand.spec["stages"][0]["model"]["models"]]  # type: ignore[index]
    feats = rp.stage_features(t, members, by_member=True, answers=list(model.answers),
                              choices=model.reads_choices, weights=w)[0]
    accept = model.score(x, feats, t.stage_tokens(members)) >= check["threshold"]
    want = rp.accepted(t, members, accept, rp.single(t, 3), weights=w)
    assert 0 < accept.mean() < 1
    assert np.allclose([r.score for r in res["casc"]], want.score)
    assert np.allclose([r.cost_usd for r in res["casc"]], want.cost)
    # Somewhere the weighted winner stood alone beside a pair: the check read its own
    # count, not the pair's.
    v = rp.vote(t, members, w)
    assert ((v.count == 1) & (v.distinct == 2)).any()


def test_the_live_check_reads_the_weighted_winners_own_count() -> None:
    # A weighted vote may keep a lone answer beside a pair: its share of agreement is
    # one of three, as the replay counts it, not the pair's two.
    tally = {"A": {"count": 2, "models": ["a", "c"]}, "D": {"count": 1, "models": ["b"]}}
    live = tally_features(tally, 3, True, winner="D", members=["a", "b", "c"])
    rows, _ = _table(60, 3)
    t = rp.Table.of(rows, MODELS, extractor("choice"))
    # Weights that always trust "b": it wins alone wherever "a" and "c" agree without it.
    feats = rp.stage_features(t, [0, 1, 2], by_member=True, weights=[0.1, 5.0, 0.1])[0]
    lone = [i for i in range(60) if feats[i, 0] == 1 / 3 and feats[i, 2] == 2 / 3]
    assert lone and live == list(feats[lone[0]][:3]) + [0.0, 1.0, 0.0]
    assert all(list(feats[i][3:]) == [0.0, 1.0, 0.0] for i in lone)
