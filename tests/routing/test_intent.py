"""Intent routers: a logistic-regression head on embeddings, its validation-chosen
threshold, saving and loading, YAML and the CLI; the real MiniLM on a small intent set
written here and on CLINC150 intents."""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chorus.cli.main import main
from chorus.config.builder import Config
from chorus.core.errors import ConfigError, MissingDependency
from chorus.core.types import Request
from chorus.embeddings import Embedder, Vectors
from chorus.patterns.router import Router
from chorus.providers.scripted import ScriptedModel
from chorus.routing.embedding import centroids
from chorus.routing.intent import (
    IntentClassifier,
    IntentHead,
    balanced_threshold,
    fit_head,
)
from chorus.routing.intent_tune import pair_batches


def _clusters(n_labels: int, per: int, seed: int, spread: float = 0.35
              ) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Unit vectors around ``n_labels`` random centres (labels L0, L1, ...), and the
    centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_labels, 16))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    owner = np.repeat(np.arange(n_labels), per)
    x = centres[owner] + rng.normal(0, spread / 4, (len(owner), 16))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, [f"L{i}" for i in owner], centres


def _far(n: int, centres: np.ndarray, seed: int) -> np.ndarray:
    """Unit vectors orthogonal-ish to every centre: out of scope."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 16))
    q, _ = np.linalg.qr(centres.T)
    x -= (x @ q) @ q.T
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_head_learns_clusters_and_matches_sklearn() -> None:
    x, y, _ = _clusters(5, 20, 0)
    head = fit_head(x, y)
    assert head.threshold is None and head.info["c"] == 10.0
    xt, yt, _ = _clusters(5, 10, 0)  # same centres (seed), fresh noise below
    xt = xt + np.random.default_rng(9).normal(0, 0.02, xt.shape)
    assert np.mean(np.asarray(head.predict(xt)) == np.asarray(yt)) > 0.95
    p = head.proba(xt)
    assert np.allclose(p.sum(axis=1), 1.0)
    from sklearn.linear_model import LogisticRegression

    ref = LogisticRegression(C=10.0, max_iter=2000, random_state=0).fit(x, np.asarray(y))
    assert np.allclose(p, ref.predict_proba(xt), atol=1e-4)


def test_two_labels_use_the_binary_model_correctly() -> None:
    x, y, _ = _clusters(2, 15, 1)
    head = fit_head(x, y)
    assert head.weights.shape == (16, 2)
    from sklearn.linear_model import LogisticRegression

    ref = LogisticRegression(C=10.0, max_iter=2000, random_state=0).fit(x, np.asarray(y))
    assert np.allclose(head.proba(x), ref.predict_proba(x), atol=1e-4)


def test_threshold_and_c_come_from_validation_and_abstain_out_of_scope() -> None:
    x, y, centres = _clusters(6, 15, 2)
    vx, vy, _ = _clusters(6, 10, 2)
    vx = np.vstack([vx + np.random.default_rng(3).normal(0, 0.05, vx.shape),
                    _far(20, centres, 4)])
    vy = vy + ["oos"] * 20
    head = fit_head(x, y, val_x=vx, val_labels=vy)
    assert head.threshold is not None and 0 < head.threshold < 1
    assert head.info["c"] in (1.0, 10.0, 100.0)
    assert set(head.info["val_scores"]) == {f"C={c} mix={m}" for c in ("1", "10", "100")
                                            for m in ("1", "0.75", "0.5", "0.25")}
    said = head.predict(_far(50, centres, 5))
    assert sum(s is None for s in said) >= 40
    tx, ty, _ = _clusters(6, 10, 2)
    kept = head.predict(tx + np.random.default_rng(6).normal(0, 0.05, tx.shape))
    assert np.mean([s == t for s, t in zip(kept, ty, strict=True)]) > 0.9


def _confident_far(head: IntentHead, n: int, seed: int) -> np.ndarray:
    """Unit vectors along the difference of two labels' weight columns: far from every
    example, yet the head is sure of one label."""
    rng = np.random.default_rng(seed)
    w = head.weights.T.astype(np.float64)
    pick = rng.integers(0, len(w), (n, 2))
    pick[:, 1] = (pick[:, 0] + 1 + pick[:, 1] % (len(w) - 1)) % len(w)
    x = w[pick[:, 0]] - w[pick[:, 1]] + rng.normal(0, 0.1, (n, w.shape[1]))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_nearest_example_similarity_joins_the_score_when_val_prefers_it(
        tmp_path: Path) -> None:
    x, y, centres = _clusters(6, 15, 2)
    plain = fit_head(x, y)
    far = _confident_far(plain, 60, 11)
    assert np.median(plain.proba(far).max(axis=1)) > 0.9  # the head alone is sure
    vx, vy, _ = _clusters(6, 10, 2)
    vx = np.vstack([vx + np.random.default_rng(3).normal(0, 0.05, vx.shape), far[:30]])
    head = fit_head(x, y, val_x=vx, val_labels=vy + ["oos"] * 30)
    assert head.mix < 1.0 and head.examples is not None
    assert head.info["val_scores"][f"C={head.info['c']:g} mix=1"] < head.info["val_score"]
    # The score is mix * top probability + (1 - mix) * nearest training example's cosine.
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    want = head.mix * head.proba(far).max(axis=1) + (1 - head.mix) * (far @ unit.T).max(axis=1)
    assert np.allclose(head.score(far), want, atol=1e-5)
    said = head.predict(far[30:])  # held-out far queries
    assert sum(s is None for s in said) >= 25
    tx, ty, _ = _clusters(6, 10, 2)
    kept = head.predict(tx + np.random.default_rng(6).normal(0, 0.05, tx.shape))
    assert np.mean([s == t for s, t in zip(kept, ty, strict=True)]) > 0.9
    head.save(tmp_path / "h")
    back = IntentHead.load(tmp_path / "h")
    assert back.mix == head.mix and np.allclose(back.score(far), head.score(far))
    (tmp_path / "h" / "examples.npy").unlink()
    with pytest.raises(ValueError, match="examples' vectors are missing"):
        IntentHead.load(tmp_path / "h")
    with pytest.raises(ValueError, match="needs its training examples"):
        IntentHead(head.labels, head.weights, head.bias, mix=0.5)


def test_balanced_threshold_matches_brute_force() -> None:
    rng = np.random.default_rng(7)
    top = np.round(rng.random(200), 2)
    right = rng.random(200) < 0.8
    out = rng.random(200) < 0.3
    t, bal = balanced_threshold(top, right, out)
    cands = np.unique(top)
    best = max(((np.mean(right[~out] & (top[~out] >= c)) + np.mean(top[out] < c)) / 2, -c)
               for c in cands)
    below = cands[cands < -best[1]].max()
    assert bal == pytest.approx(best[0]) and t == pytest.approx((below - best[1]) / 2)
    # The threshold splits the rows exactly as the best value does.
    assert (np.mean(right[~out] & (top[~out] >= t)) + np.mean(top[out] < t)) / 2 == \
        pytest.approx(bal)
    with pytest.raises(ValueError, match="both in-scope and out-of-scope"):
        balanced_threshold(top, right, np.zeros(200, dtype=bool))


def test_fit_refuses_bad_label_sets() -> None:
    x, y, _ = _clusters(3, 5, 8)
    with pytest.raises(ValueError, match="abstention label"):
        fit_head(x, [*y[:-1], "oos"])
    with pytest.raises(ValueError, match="at least two labels"):
        fit_head(x[:5], y[:5])
    with pytest.raises(ValueError, match="no training examples: zzz"):
        fit_head(x, y, val_x=x[:2], val_labels=["L0", "zzz"])
    with pytest.raises(ValueError, match="15 vectors but 14 labels"):
        fit_head(x, y[:-1])


def test_save_load_round_trip(tmp_path: Path) -> None:
    x, y, _ = _clusters(4, 10, 10)
    head = fit_head(x, y)
    head.threshold = 0.4
    head.save(tmp_path / "h")
    back = IntentHead.load(tmp_path / "h")
    assert back.labels == head.labels and back.threshold == 0.4 and back.encoder is None
    assert np.allclose(back.proba(x), head.proba(x))
    with pytest.raises(ValueError, match="not a saved intent router"):
        IntentHead.load(tmp_path / "missing")
    (tmp_path / "h" / "intent.json").write_text('{"format": "x", "labels": []}')
    with pytest.raises(ValueError, match="unknown intent router format"):
        IntentHead.load(tmp_path / "h")


def test_pair_batches_never_put_one_label_twice_in_a_batch() -> None:
    texts = [f"t{i}" for i in range(50)]
    labels = [f"l{i % 7}" for i in range(50)]
    batches = pair_batches(texts, labels, random.Random(0), batch=4)
    of = dict(zip(texts, labels, strict=True))
    anchors = [a for b in batches for a, _ in b]
    assert sorted(anchors) == sorted(texts)  # every example once per pass
    for b in batches:
        assert 2 <= len(b) <= 5
        assert len({of[a] for a, _ in b}) == len(b)
        assert all(of[a] == of[p] and a != p for a, p in b)


class TableEmbedder(Embedder):
    def __init__(self, table: dict[str, np.ndarray]) -> None:
        super().__init__("table")
        self.table = table

    async def _embed(self, texts: Sequence[str]) -> Vectors:
        return np.stack([self.table[t] for t in texts]).astype(np.float32)


async def test_classifier_in_a_router_and_from_yaml(tmp_path: Path) -> None:
    x, y, centres = _clusters(3, 10, 11)
    head = fit_head(x, y)
    head.threshold = 0.6
    head.save(tmp_path / "h")
    emb = TableEmbedder({"near0": centres[0], "near2": centres[2],
                         "nowhere": _far(1, centres, 12)[0]})
    clf = IntentClassifier(head, emb, labels={"L2": "two"})
    routes = {"L0": ScriptedModel("a", default="A"), "L1": ScriptedModel("b", default="B"),
              "two": ScriptedModel("c", default="C")}
    r = Router("r", clf, {**routes, "other": ScriptedModel("o", default="O")},
               default="other")
    assert (await r.complete(Request.of("near0"))).text == "A"
    assert (await r.complete(Request.of("near2"))).text == "C"
    off = await r.complete(Request.of("nowhere"))
    assert off.text == "O" and off.trace is not None
    assert off.trace.attributes["classifier"] == "intent"
    d = await clf.classify(Request.of("nowhere"))
    assert d.label is None and "< threshold 0.6" in d.reason

    cfg = Config.from_text(
        "models:\n  a: {provider: scripted, default: A}\n"
        "  o: {provider: scripted, default: O}\n"
        "systems:\n  routed:\n    kind: router\n"
        f"    classifier: {{type: intent, path: '{tmp_path / 'h'}', threshold: 0.5,"
        " labels: {L0: zero}}\n"
        "    routes: {zero: a, L1: o, L2: o, other: o}\n    default: other\n")
    built = cfg.get("routed")
    assert isinstance(built, Router) and isinstance(built.classifier, IntentClassifier)
    assert built.classifier.threshold == 0.5 and "zero" in built.classifier.labels
    built.classifier.embedder = emb
    assert (await built.complete(Request.of("near0"))).text == "A"
    for bad, match in ((f"path: '{tmp_path / 'nope'}'", "not a saved intent router"),
                       (f"path: '{tmp_path / 'h'}', labels: {{zz: a}}",
                        "unknown intents: zz")):
        c = Config.from_text(
            "models:\n  a: {provider: scripted, default: A}\n"
            f"systems:\n  r: {{kind: router, classifier: {{type: intent, {bad}}},"
            " routes: {a: a}, default: a}\n")
        with pytest.raises(ConfigError, match=match):
            c.get("r")


async def test_the_head_runs_on_one_blas_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    # A second BLAS thread waits for a core on a busy machine and spins on after the
    # call, slowing the next query's encode: the decision's products run on one.
    threadpoolctl = pytest.importorskip("threadpoolctl")
    x, y, centres = _clusters(3, 10, 11)
    head = fit_head(x, y)
    seen: list[int] = []
    proba = head.proba

    def spy(v: Any) -> Any:
        blas = threadpoolctl.threadpool_info()
        seen.append(min(p["num_threads"] for p in blas if p["user_api"] == "blas"))
        return proba(v)

    monkeypatch.setattr(head, "proba", spy)
    clf = IntentClassifier(head, TableEmbedder({"near0": centres[0]}))
    with threadpoolctl.threadpool_limits(2, "blas"):
        d = await clf.classify(Request.of("near0"))
        head.proba(centres[:1])
    assert d.label == "L0" and seen == [1, 2]


def test_cli_refuses_bad_intent_files(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bad.jsonl").write_text('{"text": "hi"}\n')
    assert main(["router", "fit", "--intents", str(tmp_path / "bad.jsonl"), "--out",
                 str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert 'bad.jsonl:1: each line needs a string "text" and "label"' in err
    assert "Traceback" not in err
    (tmp_path / "ok.yaml").write_text("a: [hi]\nb: [yo]\n")
    assert main(["router", "fit", "--intents", str(tmp_path / "ok.yaml"), "--out",
                 str(tmp_path / "r"), "--tune-epochs", "2"]) == 1
    assert "--tune-epochs needs --tune-encoder" in capsys.readouterr().err
    assert main(["router", "fit", "--intents", str(tmp_path / "ok.yaml"), "--out",
                 str(tmp_path / "r"), "--kind", "mlp"]) == 1
    assert "--kind is for outcome tables, not --intents" in capsys.readouterr().err
    (tmp_path / "t.jsonl").write_text("")
    assert main(["router", "fit", "--outcomes", str(tmp_path / "t.jsonl"), "--out",
                 str(tmp_path / "r"), "--val", str(tmp_path / "ok.yaml")]) == 1
    assert "--val is for --intents, not outcome tables" in capsys.readouterr().err
    # One label, or out-of-scope examples among the training ones: refused before any
    # embedding (the fine-tuning would take minutes), naming the file.
    monkeypatch.setattr("chorus.cli.router_intents._embedder", _no_embedder)
    (tmp_path / "one.yaml").write_text("a: [hi, hello]\n")
    (tmp_path / "oos.yaml").write_text("a: [hi]\nb: [yo]\noos: [the weather]\n")
    for name, want in (("one.yaml", "one.yaml: an intent router needs examples of at "
                                    "least two labels, got 1"),
                       ("oos.yaml", "oos.yaml: training examples are labelled 'oos', the "
                                    "abstention label: leave them out (they belong in "
                                    "--val)")):
        assert main(["router", "fit", "--intents", str(tmp_path / name), "--out",
                     str(tmp_path / "r"), "--tune-encoder"]) == 1
        assert want in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    # A YAML syntax error: one line, with its line number.
    (tmp_path / "typo.yaml").write_text("a: [hi]\nb: [what?]\n")
    assert main(["router", "fit", "--intents", str(tmp_path / "typo.yaml"), "--out",
                 str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert "typo.yaml:2: not YAML or JSON (expected ',' or ']', but got '?')" in err
    assert err.count("\n") == 1


def _no_embedder() -> None:
    raise AssertionError("embedded examples the router cannot use")


# -- the real MiniLM ---------------------------------------------------------------------

#: A small assistant's intents, written for this test; held-out phrasings and
#: out-of-scope requests below are not among the examples.
EXAMPLES = {
    "weather": ["what's the weather like today", "will it rain tomorrow",
                "how hot is it outside", "is it going to snow this weekend",
                "what's the forecast for friday", "do i need an umbrella today"],
    "alarm": ["wake me up at 6 am", "set an alarm for seven thirty",
              "cancel my morning alarm", "change my alarm to 8",
              "i need an alarm in twenty minutes", "turn off all my alarms"],
    "music": ["play some jazz", "put on my workout playlist", "skip this song",
              "play the latest album by adele", "turn the music up",
              "i want to hear some classical music"],
    "timer": ["start a timer for ten minutes", "how much time is left on my timer",
              "set a 5 minute timer for the eggs", "stop the timer",
              "pause my countdown", "time 30 seconds for me"],
    "shopping": ["add milk to my shopping list", "what's on my grocery list",
                 "remove eggs from the list", "put bread and butter on the list",
                 "clear my shopping list", "do i have apples on my list"],
}
HELD_OUT = [("is it sunny in paris right now", "weather"),
            ("what temperature will it be tonight", "weather"),
            ("get me up at half past five", "alarm"),
            ("delete the alarm for tomorrow", "alarm"),
            ("play something relaxing", "music"),
            ("next track please", "music"),
            ("count down three minutes", "timer"),
            ("how long until the timer goes off", "timer"),
            ("we are out of coffee, add it to the list", "shopping"),
            ("take bananas off my grocery list", "shopping")]
VAL = [("will there be a storm later", "weather"), ("alarm at 9 please", "alarm"),
       ("play my favourite songs", "music"), ("set a timer for the pasta", "timer"),
       ("add rice to my list", "shopping"),
       ("who won the world cup in 1998", "oos"), ("how do i change a flat tyre", "oos"),
       ("what's the capital of peru", "oos"), ("tell me about black holes", "oos")]
OUT_OF_SCOPE = ["what is the square root of 144", "translate good morning into german",
                "who wrote pride and prejudice", "book a table for two at an italian place",
                "how many calories are in an avocado", "what's my bank balance"]


def await_(coro: Any) -> Any:
    return asyncio.run(coro)


def _minilm() -> Embedder:
    from chorus.embeddings.local import MiniLMEmbedder, model_folder

    try:
        model_folder()
    except MissingDependency as exc:
        pytest.skip(str(exc))
    return MiniLMEmbedder()


@pytest.mark.embeddings
async def test_real_minilm_head_routes_held_out_phrasings_and_abstains() -> None:
    emb = _minilm()
    texts = [t for ts in EXAMPLES.values() for t in ts]
    labels = [lb for lb, ts in EXAMPLES.items() for _ in ts]
    head = fit_head(await emb.embed(texts), labels, val_x=await emb.embed([t for t, _ in VAL]),
                    val_labels=[lb for _, lb in VAL])
    assert head.threshold is not None
    clf = IntentClassifier(head, emb)
    raw = head.predict(await emb.embed([t for t, _ in HELD_OUT]), threshold=-np.inf)
    assert sum(s == g for s, (_, g) in zip(raw, HELD_OUT, strict=True)) >= 8, raw
    said = [(await clf.classify(Request.of(t))).label for t, _ in HELD_OUT]
    right = sum(s == g for s, (_, g) in zip(said, HELD_OUT, strict=True))
    assert right >= 7, list(zip(said, HELD_OUT, strict=True))
    off = [(await clf.classify(Request.of(t))).label for t in OUT_OF_SCOPE]
    assert sum(s is None for s in off) >= 4, off


CLINC = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "clinc150" / \
    "data_full.json"


@pytest.mark.embeddings
async def test_head_beats_nearest_centroid_on_clinc150_intents() -> None:
    """On 25 CLINC150 intents with 5 examples each: the head is right at least as often
    as the nearest centroid on the intents' test utterances."""
    if not CLINC.is_file():
        pytest.skip(f"{CLINC} not found (the shared evaluation data)")
    emb = _minilm()
    data = json.loads(CLINC.read_text(encoding="utf-8"))
    intents = sorted({lb for _, lb in data["train"]})[::6][:25]
    rng = random.Random(1)
    train = [(t, i) for i in intents
             for t in rng.sample([t for t, lb in data["train"] if lb == i], 5)]
    test = [(t, lb) for t, lb in data["test"] if lb in set(intents)]
    x = await emb.embed([t for t, _ in train])
    xt = await emb.embed([t for t, _ in test])
    gold = np.asarray([lb for _, lb in test])
    head = fit_head(x, [lb for _, lb in train])
    head_acc = float(np.mean(np.asarray(head.predict(xt)) == gold))
    cents = centroids(x, [intents.index(lb) for _, lb in train], len(intents))
    cent_acc = float(np.mean(np.asarray(intents)[(xt @ cents.T).argmax(axis=1)] == gold))
    assert head_acc >= cent_acc and head_acc > 0.8, (head_acc, cent_acc)


@pytest.mark.embeddings
def test_cli_fits_a_fine_tuned_router_that_yaml_serves(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("sentence_transformers")
    _minilm()
    rows = [{"text": t, "label": lb} for lb, ts in EXAMPLES.items() for t in ts]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "val.jsonl").write_text(
        "".join(json.dumps({"text": t, "label": lb}) + "\n" for t, lb in VAL))
    (tmp_path / "test.jsonl").write_text(
        "".join(json.dumps({"text": t, "label": lb}) + "\n" for t, lb in HELD_OUT)
        + "".join(json.dumps({"text": t, "label": "oos"}) + "\n" for t in OUT_OF_SCOPE))
    assert main(["router", "fit", "--intents", str(tmp_path / "train.jsonl"), "--val",
                 str(tmp_path / "val.jsonl"), "--out", str(tmp_path / "r"),
                 "--tune-encoder", "--tune-epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"intent router over 5 labels, 30 examples(, plus the labels' names)?, "
                     r"MiniLM fine-tuned 1 epochs", out), out
    from chorus.embeddings._bert import supported

    assert supported(tmp_path / "r" / "encoder")  # served by the numpy backend
    from chorus.embeddings.local import MiniLMEmbedder

    probe = ["wake me at noon", "what's on my list"]
    on_numpy = await_(MiniLMEmbedder(path=tmp_path / "r" / "encoder", backend="numpy")
                      .embed(probe))
    on_torch = await_(MiniLMEmbedder(path=tmp_path / "r" / "encoder",
                                     backend="sentence-transformers").embed(probe))
    assert np.all(np.sum(on_numpy * on_torch, axis=1) > 0.9999)
    bundled = await_(MiniLMEmbedder(backend="numpy").embed(probe))
    assert not np.allclose(on_numpy, bundled, atol=1e-3)  # it was tuned
    assert main(["router", "eval", "--router", str(tmp_path / "r"), "--intents",
                 str(tmp_path / "test.jsonl"), "--json", str(tmp_path / "e.json")]) == 0
    report = json.loads((tmp_path / "e.json").read_text())
    assert report["in_scope"] == 10 and report["out_of_scope"] == 6
    assert report["in_scope_accuracy_no_threshold"] >= 0.8, report
    cfg = Config.from_text(
        "models:\n  a: {provider: scripted, default: A}\n"
        "systems:\n  routed:\n    kind: router\n"
        f"    classifier: {{type: intent, path: '{tmp_path / 'r'}'}}\n"
        "    routes: {" + ", ".join(f"{lb}: a" for lb in EXAMPLES) + "}\n"
        "    default: weather\n")
    built = cfg.get("routed")
    assert isinstance(built, Router) and isinstance(built.classifier, IntentClassifier)
    enc = built.classifier.embedder
    assert getattr(enc, "path", None) == tmp_path / "r" / "encoder"
