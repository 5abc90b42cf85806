from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from chorus.core.errors import MissingDependency
from chorus.core.types import Request
from chorus.patterns.router import Router
from chorus.providers.scripted import ScriptedModel
from chorus.routing import EmbeddingClassifier
from chorus.routing.embedding import centroid_scores, centroids, decide, knn_scores

from ._fakes import WordEmbedder

VOCAB = ["invoice", "refund", "charge", "crash", "error", "install"]
EXAMPLES = {
    "billing": ["refund my invoice", "why this charge", "refund the charge"],
    "tech": ["app crash on start", "install error", "error after install"],
}


def test_centroids_are_unit_means() -> None:
    v = np.asarray([[1, 0], [0, 1], [1, 0]], dtype=np.float32)
    c = centroids(v, [0, 0, 1], 2)
    assert np.allclose(c, [[2**-0.5, 2**-0.5], [1, 0]])
    s = centroid_scores(np.asarray([1, 0], dtype=np.float32), c, ["a", "b"])
    assert s == pytest.approx({"a": 2**-0.5, "b": 1.0})


def test_knn_votes_and_mean_similarity() -> None:
    sims = np.asarray([0.9, 0.8, 0.7, 0.1], dtype=np.float32)
    scores, votes = knn_scores(sims, ["a", "b", "b", "a"], k=3)
    assert votes == {"a": 1, "b": 2}
    assert scores == pytest.approx({"a": 0.9, "b": 0.75})
    d = decide(scores, None, votes)
    assert d.label == "b"  # two votes beat one closer neighbour
    assert d.reason == "b 2/3 nearest, similarity 0.75"
    # k larger than the examples uses them all
    assert sum(knn_scores(sims, ["a", "b", "b", "a"], k=10)[1].values()) == 4


def test_decide_abstains_below_threshold() -> None:
    d = decide({"a": 0.41, "b": 0.2}, 0.5)
    assert d.label is None
    assert d.reason == "a similarity 0.41 < threshold 0.5"
    assert d.confidence == pytest.approx(0.41)
    assert decide({"a": 0.41}, 0.4).label == "a"


async def test_centroid_classifier_routes_by_meaning_and_embeds_examples_once() -> None:
    emb = WordEmbedder(VOCAB)
    clf = EmbeddingClassifier(emb, EXAMPLES, threshold=0.3)
    d = await clf.classify(Request.of("I want a refund for this charge"))
    assert d.label == "billing"
    assert set(d.scores) == {"billing", "tech"}
    assert d.scores["billing"] > d.scores["tech"]
    d2 = await clf.classify(Request.of("the app shows an error"))
    assert d2.label == "tech"
    example_batches = [b for b in emb.batches if "refund my invoice" in b]
    assert len(example_batches) == 1


async def test_knn_classifier() -> None:
    clf = EmbeddingClassifier(WordEmbedder(VOCAB), EXAMPLES, method="knn", k=3)
    d = await clf.classify(Request.of("install crash error"))
    assert d.label == "tech"
    assert "3/3 nearest" in d.reason


async def test_unrelated_text_abstains() -> None:
    clf = EmbeddingClassifier(WordEmbedder(VOCAB), EXAMPLES, threshold=0.5)
    d = await clf.classify(Request.of("tell me a joke"))
    assert d.label is None
    assert "< threshold 0.5" in d.reason


def test_bad_arguments() -> None:
    emb = WordEmbedder(VOCAB)
    with pytest.raises(ValueError, match="has no examples"):
        EmbeddingClassifier(emb, {"a": []})
    with pytest.raises(ValueError, match="method"):
        EmbeddingClassifier(emb, EXAMPLES, method="svm")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="k must be"):
        EmbeddingClassifier(emb, EXAMPLES, k=0)


# -- the real MiniLM on a few CLINC150 intents ------------------------------------------

CLINC = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "clinc150" / \
    "data_full.json"
INTENTS = ["translate", "balance", "weather", "alarm", "book_flight"]


@pytest.mark.embeddings
async def test_minilm_routes_clinc150_intents_and_abstains_out_of_scope() -> None:
    if not CLINC.is_file():
        pytest.skip(f"{CLINC} not found (the shared evaluation data)")
    from chorus.embeddings.local import MiniLMEmbedder, model_folder

    try:
        model_folder()
    except MissingDependency as exc:
        pytest.skip(str(exc))
    data = json.loads(CLINC.read_text(encoding="utf-8"))
    examples = {i: [t for t, lab in data["train"] if lab == i][:10] for i in INTENTS}
    tests = [(t, i) for i in INTENTS for t in [t for t, lab in data["test"] if lab == i][:6]]
    out_of_scope = [t for t, _ in data["oos_test"][:20]]
    mathy, chatty = ScriptedModel("intent", default="ok"), ScriptedModel("other", default="?")
    clf = EmbeddingClassifier(MiniLMEmbedder(), examples, threshold=0.35)
    router = Router("intents", clf, {**{i: mathy for i in INTENTS}, "oos": chatty},
                    default="oos")

    routed = [await clf.classify(Request.of(t)) for t, _ in tests]
    abstained = sum(d.label is None for d in routed)
    right = sum(d.label == i for d, (_, i) in zip(routed, tests, strict=True))
    assert right >= 0.8 * len(tests), [(d.label, i) for d, (_, i) in zip(routed, tests,
                                                                           strict=True)]
    assert abstained <= 0.2 * len(tests)
    oos = [await router.complete(Request.of(t)) for t in out_of_scope]
    sent_to_default = sum(c.trace is not None and c.trace.attributes["route"] == "oos"
                          for c in oos)
    assert sent_to_default >= 0.8 * len(out_of_scope)
    first = oos[0].trace
    assert first is not None and set(first.attributes["scores"]) == set(INTENTS)
