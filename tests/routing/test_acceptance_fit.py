"""How a learned acceptance check is fitted: the prompt's embedding (many weak
dimensions) and the answer's features (a few strong ones) are penalised apart."""

from __future__ import annotations

import numpy as np

from chorus.routing.acceptance import AcceptanceModel


def _auc(p: np.ndarray, y: np.ndarray) -> float:
    pos, neg = p[y], p[~y]
    return float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())


def test_strong_answer_features_are_not_flattened_with_a_weak_embedding() -> None:
    # 200 embedding dimensions of noise, and one answer feature that tells: right 80 % of
    # the time when it is 1, 30 % when 0.
    rng = np.random.default_rng(0)
    n = 900
    x = rng.normal(size=(n, 200))
    flag = rng.random(n) < 0.5
    right = np.where(flag, rng.random(n) < 0.8, rng.random(n) < 0.3)
    f = np.c_[flag.astype(float), np.ones(n), np.full(n, 1.0)]  # the 3 answer features
    fit, test = np.arange(n) < 600, np.arange(n) >= 600
    chosen = AcceptanceModel.fit(x[fit], f[fit], right[fit])
    assert chosen.info["feature_penalty_ratio"] < 1.0
    assert set(chosen.info["ratio_chosen_from"]) == {"1.0", "0.1", "0.01"}
    # The same penalty on every input: the feature's weight shrinks with the embedding's.
    alike = AcceptanceModel.fit(x[fit], f[fit], right[fit], l2=chosen.info["l2"])
    assert alike.info["feature_penalty_ratio"] == 1.0
    d = x.shape[1]
    assert chosen.weights[d] > 2 * alike.weights[d] > 0
    gap = lambda m: (m.predict(x[test], f[test])[flag[test]].mean()  # noqa: E731
                     - m.predict(x[test], f[test])[~flag[test]].mean())
    assert gap(chosen) > gap(alike) + 0.1
    assert _auc(chosen.predict(x[test], f[test]), right[test]) >= _auc(
        alike.predict(x[test], f[test]), right[test])


def test_a_check_of_the_prompt_alone_has_no_ratio_to_choose() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 8))
    right = x[:, 0] + rng.normal(0, 1, 200) > 0
    rival = AcceptanceModel.fit(x, np.zeros((200, 0)), right, names=())
    assert rival.info["feature_penalty_ratio"] == 1.0 and rival.info["ratio_chosen_from"] == {}
