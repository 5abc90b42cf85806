"""A label's name as one more example of it: kept when val scores the head higher with
the names (few examples, names that mean something), left out when it does not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chorus.eval.intents import fit_intents, readable_label


def test_readable_label() -> None:
    assert readable_label("pin_change") == "pin change"
    assert readable_label("TechSupport") == "Tech Support"
    assert readable_label("billing-v2.refund") == "billing v2 refund"
    assert readable_label("_") == "_"


def _world(meaningful: bool, seed: int = 0) -> tuple[list[tuple[str, str]],
                                                    list[tuple[str, str]], dict[str, np.ndarray]]:
    """Twelve labels in 24 dimensions; one training example each, far off its label's
    centre; val near the centres. A meaningful name embeds at its label's centre, a
    meaningless one somewhere at random."""
    rng = np.random.default_rng(seed)
    centres = np.linalg.qr(rng.normal(size=(24, 24)))[0][:12]
    vec: dict[str, np.ndarray] = {}
    train, val = [], []
    for i, c in enumerate(centres):
        label = f"intent_{i}"
        t = f"train {i}"
        vec[t] = c + rng.normal(0, 0.45, 24)
        train.append((t, label))
        for j in range(6):
            v = f"val {i} {j}"
            vec[v] = c + rng.normal(0, 0.2, 24)
            val.append((v, label))
            vec[f"test {i} {j}"] = c + rng.normal(0, 0.2, 24)
        vec[readable_label(label)] = c if meaningful else rng.normal(0, 1, 24)
    return train, val, vec


def _embed(vec: dict[str, np.ndarray]):  # type: ignore[no-untyped-def]
    def embed(texts: list[str]) -> np.ndarray:
        x = np.stack([vec[t] for t in texts]).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)
    return embed


@pytest.mark.parametrize("meaningful", [True, False])
def test_val_decides_whether_the_names_join(tmp_path: Path, meaningful: bool) -> None:
    train, val, vec = _world(meaningful)
    head = fit_intents(train, tmp_path / "h", _embed(vec), val=val)
    scores = head.info["label_names_val_score"]
    assert head.info["label_names"] is meaningful, scores
    if meaningful:
        assert scores["with"] > scores["without"]
        # And the head routes held-out phrasings better for it.
        never = fit_intents(train, tmp_path / "n", _embed(vec), val=val, label_names=False)
        assert never.info["label_names"] is False and "label_names_val_score" not in never.info
        test = [(t.replace("val", "test"), lb) for t, lb in val]
        x = _embed(vec)([t for t, _ in test])
        gold = [lb for _, lb in test]
        right = np.mean(np.array(head.predict(x, -np.inf)) == gold)
        assert right > np.mean(np.array(never.predict(x, -np.inf)) == gold)


def test_without_val_names_join_only_when_asked(tmp_path: Path) -> None:
    train, _, vec = _world(True)
    assert fit_intents(train, tmp_path / "a", _embed(vec)).info["label_names"] is False
    asked = fit_intents(train, tmp_path / "b", _embed(vec), label_names=True)
    assert asked.info["label_names"] is True
    assert asked.info["train_examples"] == 2 * len(train)
