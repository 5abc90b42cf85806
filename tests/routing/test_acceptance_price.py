"""The price an acceptance check weighs: what escalating costs, predicted from the prompt
and how long the cheap stage's answer ran, so that a cascade escalates where it gains most
per dollar (a knapsack's order) rather than where the cheap answer is weakest alone."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from chorus.core.types import Completion, Request, Usage
from chorus.embeddings import Embedder, Vectors
from chorus.eval import _tune_cascades
from chorus.eval.outcomes import Outcome, OutcomeItem
from chorus.eval.tune import search
from chorus.patterns._checks import LearnedCheck
from chorus.patterns.agreement import extractor
from chorus.routing.acceptance import AcceptanceModel, PriceModel, answer_features


def _costs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, 8))
    tokens = rng.integers(5, 400, n)
    cost = 1e-4 * (1 + tokens) ** 0.8 * np.exp(0.3 * x[:, 0] + rng.normal(0, 0.1, n))
    return x, tokens, cost


def test_the_price_follows_the_stage_tokens_and_the_prompt() -> None:
    x, tokens, cost = _costs(400, 0)
    price = PriceModel.fit(x, tokens, cost)
    xt, tt, ct = _costs(300, 1)
    rel = price.relative(xt, tt)
    assert rel.shape == (300,) and np.all(rel > 0)
    assert np.corrcoef(np.log(rel), np.log(ct))[0, 1] > 0.95
    # Both inputs count: the prompt alone misses most of it.
    alone = PriceModel.fit(x, np.zeros(400), cost).relative(xt, np.zeros(300))
    assert np.corrcoef(np.log(alone), np.log(ct))[0, 1] < 0.6
    assert price.info["r2"] > 0.9
    with pytest.raises(ValueError, match="escalation cost"):
        PriceModel.fit(x[:10], tokens[:10], cost[:10])


def test_a_priced_check_escalates_the_cheaper_of_two_equal_doubts(tmp_path: Path) -> None:
    x, tokens, cost = _costs(400, 2)
    right = np.random.default_rng(3).random(400) < 0.6
    base = AcceptanceModel.fit(x, np.ones((400, 3)), right)
    priced = base.with_price(PriceModel.fit(x, tokens, cost), 1.0)
    assert priced.priced and not base.priced
    # Same prompt, same answer: the one that costs more to escalate is kept sooner.
    same = np.repeat(x[:1], 2, axis=0)
    s = priced.score(same, np.ones((2, 3)), [10, 300])
    p = base.score(same, np.ones((2, 3)))
    assert p[0] == pytest.approx(p[1]) and s[1] > s[0]
    assert np.all((s > 0) & (s <= 1))
    with pytest.raises(ValueError, match="output tokens"):
        priced.score(same, np.ones((2, 3)))
    # A weight of 0 leaves the score as it was; saved and loaded, it scores the same.
    assert np.allclose(base.with_price(priced.price, 0.0).score(same, np.ones((2, 3))), p)
    back = AcceptanceModel.load(priced.save(tmp_path / "m"))
    assert back.priced and np.allclose(back.score(same, np.ones((2, 3)), [10, 300]), s)
    with pytest.raises(ValueError, match="at least 0"):
        base.with_price(priced.price, -1.0)


def _table(n: int, seed: int) -> tuple[list[OutcomeItem], np.ndarray]:
    """The cheap model is right 55 % of the time everywhere, the strong one 95 %. The
    prompts' embeddings say nothing; what escalating costs does: the strong model answers
    at length (20 times the cost) where the cheap one did."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, 8))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    long = rng.random(n) < 0.5
    rows = []
    for i in range(n):
        gold = "ABCD"[rng.integers(0, 4)]
        outs = {}
        for m, p, price in (("cheap", 0.55, 1.0), ("strong", 0.95, 10.0)):
            ok = rng.random() < p
            letter = gold if ok else [c for c in "ABCD" if c != gold][rng.integers(0, 3)]
            tokens = int(300 + rng.integers(0, 50)) if long[i] else int(10 + rng.integers(0, 5))
            scale = 20.0 if (m == "strong" and long[i]) else 1.0
            outs[m] = Outcome(float(ok), price * 1e-5 * scale * (1 + 0.1 * rng.random()),
                              f"The answer is ({letter})", tokens)
        rows.append(OutcomeItem(str(i), f"q{i}", None, gold, outs))
    return rows, x


def test_tune_buys_more_quality_per_dollar_with_the_price(
        monkeypatch: pytest.MonkeyPatch) -> None:
    rows, x = _table(1200, 4)

    def best() -> tuple[float, bool]:
        found = search(rows, x, ["cheap", "strong"], extract="choice", seed=0)
        strong = next(c for c in found.candidates if c.name == "single-strong")
        top = max((c for c in found.front if c.cost <= 0.3 * strong.cost),
                  key=lambda c: c.quality)
        return top.quality, "-p" in top.name

    priced, by_price = best()
    monkeypatch.setattr(_tune_cascades, "PRICE_WEIGHTS", (0.0,))
    unpriced, _ = best()
    # At 30 % of the strong model's cost, escalating the short (cheap to escalate) half
    # first gains about 0.11 over escalating at random (0.78 against 0.67 expected).
    assert by_price and priced >= unpriced + 0.05, (priced, unpriced)


async def test_the_live_check_reads_the_answers_tokens_and_says_the_price() -> None:
    x, tokens, cost = _costs(400, 5)
    x /= np.linalg.norm(x, axis=1, keepdims=True)  # as an embedder gives them
    right = np.random.default_rng(6).random(400) < 0.6
    feats = np.tile(answer_features(1, 1, True, 1), (400, 1))
    priced = AcceptanceModel.fit(x, feats, right).with_price(PriceModel.fit(x, tokens, cost),
                                                             1.0)
    check = LearnedCheck(priced, _OneVector(x[0]), 0.5, extract=extractor("choice"))
    request = Request.of("q")
    short, long = [await check.score(request, Completion(
        "The answer is (B)", "cheap", usage=Usage(5, n))) for n in (10, 300)]
    # The answer that wrote more is the dearer one to escalate: kept more readily.
    assert (long.confidence or 0) > (short.confidence or 0)
    assert "escalating would cost" in (short.note or "")
    assert short.confidence == pytest.approx(float(priced.score(x[:1], feats[:1], [10])[0]))


class _OneVector(Embedder):
    def __init__(self, v: np.ndarray) -> None:
        super().__init__("one")
        self.v = v

    async def _embed(self, texts: Sequence[str]) -> Vectors:
        return np.tile(self.v, (len(texts), 1)).astype(np.float32)
