"""Intent routing by a trained head: multinomial logistic regression (scikit-learn) on
sentence embeddings of example utterances per label, with an abstention threshold on its
probability, optionally over a MiniLM fine-tuned on the same examples
(``chorus.routing.intent_tune``: contrastive, in-batch negatives, as SetFit does).

The abstention score is ``mix * p + (1 - mix) * s``: ``p`` the head's top probability and
``s`` the cosine similarity of the query to its nearest training example (a distance
signal the linear head lacks: a query far from every example is out of scope even when
the head is sure which side of its planes it falls). ``mix`` = 1 is the probability alone.

The head's hyper-parameters (``C``, the inverse L2 strength, and ``mix``) and the
threshold are chosen on a validation set when one is given: ``C`` from ``C_GRID`` and
``mix`` from ``MIX_GRID`` by balanced accuracy (in-scope accuracy and out-of-scope recall,
when the validation set has out-of-scope utterances, labelled ``abstain``), else ``C`` by
accuracy; the threshold is the score with the best balanced accuracy. Without a
validation set ``C`` is ``DEFAULT_C`` and there is no threshold.

A head is saved as a folder (``intent.json`` + ``.npy`` arrays, the training examples'
vectors among them when ``mix`` < 1, plus ``encoder/`` when the encoder was fine-tuned)
and used in YAML:

    classifier: {type: intent, path: routers/clinc-10}

The decision is one encode of the query and one (dimension x labels) product, plus one
(dimension x examples) product when ``mix`` < 1.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field

from chorus.config.schema import Node
from chorus.core.errors import MissingDependency
from chorus.core.registry import BuildContext, config_path
from chorus.core.types import Request
from chorus.embeddings import Embedder
from chorus.embeddings.threads import one_blas_thread
from chorus.routing._base import Classifier, Decision
from chorus.routing._saved import read_saved

__all__ = [
    "C_GRID",
    "DEFAULT_C",
    "MIX_GRID",
    "IntentClassifier",
    "IntentClassifierConfig",
    "IntentHead",
    "balanced_threshold",
    "build_classifier",
    "check_labels",
    "fit_head",
]

Array = npt.NDArray[np.float64]
_FORMAT = "chorus-intent/1"
#: The values of C tried on the validation set (unit-length inputs need weak L2).
C_GRID = (1.0, 10.0, 100.0)
#: C without a validation set.
DEFAULT_C = 10.0
#: The weights of the top probability in the abstention score tried on the validation
#: set (the rest goes to the nearest example's cosine similarity; 1.0 is tried first).
MIX_GRID = (1.0, 0.75, 0.5, 0.25)


@dataclass
class IntentHead:
    """A fitted linear head: probabilities ``softmax(x @ weights + bias)`` over ``labels``,
    abstaining when ``score`` is below ``threshold``."""

    labels: list[str]
    weights: npt.NDArray[np.float32]  # (dimension, labels)
    bias: npt.NDArray[np.float32]  # (labels,)
    threshold: float | None = None
    info: dict[str, Any] = field(default_factory=dict)
    #: The weight of the top probability in the abstention score.
    mix: float = 1.0
    #: Unit rows of the training examples (needed when ``mix`` < 1).
    examples: npt.NDArray[np.float32] | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.mix <= 1.0:
            raise ValueError(f"mix must be in [0, 1], got {self.mix}")
        if self.mix < 1.0 and self.examples is None:
            raise ValueError("a head with mix < 1 needs its training examples' vectors")

    def proba(self, x: npt.ArrayLike) -> Array:
        """Each label's probability (columns) for each embedded utterance (rows)."""
        z = np.asarray(x, dtype=np.float32) @ self.weights + self.bias
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z.astype(np.float64))
        return np.asarray(e / e.sum(axis=1, keepdims=True))

    def score(self, x: npt.ArrayLike, p: Array | None = None) -> Array:
        """The abstention score of each row: ``mix`` * its top probability + (1 - ``mix``)
        * its cosine similarity to the nearest training example (``p``: ``proba(x)``
        when already computed)."""
        p = self.proba(x) if p is None else p
        top = p.max(axis=1)
        if self.mix >= 1.0 or self.examples is None:
            return np.asarray(top)
        near = (np.asarray(x, dtype=np.float32) @ self.examples.T).max(axis=1)
        return np.asarray(self.mix * top + (1.0 - self.mix) * near.astype(np.float64))

    def predict(self, x: npt.ArrayLike, threshold: float | None = None) -> list[str | None]:
        """The label of each row, or None when its score is below the threshold (the
        head's own by default)."""
        t = self.threshold if threshold is None else threshold
        p = self.proba(x)
        best = p.argmax(axis=1)
        s = self.score(x, p)
        return [None if t is not None and s[i] < t else self.labels[int(j)]
                for i, j in enumerate(best)]

    @property
    def encoder(self) -> Path | None:
        """The fine-tuned encoder folder saved with the head (None: the bundled MiniLM)."""
        folder = self.info.get("encoder_folder")
        return Path(folder) if folder else None

    def save(self, folder: str | Path) -> Path:
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        np.save(out / "weights.npy", self.weights)
        np.save(out / "bias.npy", self.bias)
        if self.mix < 1.0 and self.examples is not None:
            np.save(out / "examples.npy", self.examples)
        info = {k: v for k, v in self.info.items() if k != "encoder_folder"}
        meta = {"format": _FORMAT, "labels": self.labels, "threshold": self.threshold,
                "mix": self.mix,
                "encoder": "encoder" if (out / "encoder" / "config.json").is_file() else None,
                "info": info}
        (out / "intent.json").write_text(json.dumps(meta, indent=2) + "\n", "utf-8")
        return out

    @classmethod
    def load(cls, folder: str | Path) -> IntentHead:
        root = Path(folder)
        meta, (weights, bias) = read_saved(root, "intent.json", ["weights", "bias"], _FORMAT,
                                           what="a saved intent router", kind="intent router")
        weights, bias = weights.astype(np.float32), bias.astype(np.float32)
        labels = [str(x) for x in meta["labels"]]
        if weights.shape != (weights.shape[0], len(labels)) or bias.shape != (len(labels),):
            raise ValueError(f"{str(root)!r}: arrays do not match its {len(labels)} labels")
        info = dict(meta.get("info", {}))
        if meta.get("encoder"):
            info["encoder_folder"] = str(root / meta["encoder"])
        t = meta.get("threshold")
        mix = float(meta.get("mix", 1.0))
        examples = None
        if mix < 1.0:
            try:
                examples = np.load(root / "examples.npy").astype(np.float32)
            except (OSError, ValueError) as exc:
                raise ValueError(f"{str(root)!r}: its examples' vectors are missing "
                                 f"({exc})") from None
            if examples.ndim != 2 or examples.shape[1] != weights.shape[0]:
                raise ValueError(f"{str(root)!r}: examples.npy does not match its weights")
        return cls(labels, weights, bias, None if t is None else float(t), info, mix,
                   examples)


def balanced_threshold(top: Array, right: npt.NDArray[np.bool_],
                       is_out: npt.NDArray[np.bool_]) -> tuple[float, float]:
    """The threshold with the best balanced accuracy: in-scope rows must be right and at
    or above it, out-of-scope rows below it; of the values that split the rows that
    way, the lowest, moved halfway to the next lower value. Returns (threshold,
    balanced accuracy)."""
    if not is_out.any() or is_out.all():
        raise ValueError("a threshold needs both in-scope and out-of-scope utterances")
    cand = np.unique(top)
    # For each candidate t: in-scope right rows with top >= t, out rows with top < t.
    ins_right = np.sort(top[~is_out & right])
    outs = np.sort(top[is_out])
    kept = len(ins_right) - np.searchsorted(ins_right, cand, side="left")
    caught = np.searchsorted(outs, cand, side="left")
    bal = (kept / int((~is_out).sum()) + caught / len(outs)) / 2
    best = int(np.argmax(bal))
    # Halfway down to the next lower value: the same split of the validation rows, with
    # a margin on both sides of it.
    t = float(cand[best]) if best == 0 else float(cand[best] + cand[best - 1]) / 2
    return t, float(bal[best])


def _logistic(x: Array, y: Sequence[str], c: float, seed: int) -> tuple[list[str], Any]:
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:
        raise MissingDependency("scikit-learn", "fitting an intent router",
                                "embeddings") from exc
    model = LogisticRegression(C=c, max_iter=2000, random_state=seed)
    model.fit(x, np.asarray(y))
    return [str(c) for c in model.classes_], model


def check_labels(labels: Iterable[str], abstain: str, *,
                 validation: str = "the validation set") -> None:
    """Raise ValueError unless training ``labels`` can fit a head: two labels at least,
    and none the abstention label (those belong in ``validation``)."""
    known = set(labels)
    if abstain in known:
        raise ValueError(f"training examples are labelled {abstain!r}, the abstention "
                         f"label: leave them out (they belong in {validation})")
    if len(known) < 2:
        raise ValueError(f"an intent router needs examples of at least two labels, got "
                         f"{len(known)}")


def fit_head(x: npt.ArrayLike, labels: Sequence[str], *,
             val_x: npt.ArrayLike | None = None, val_labels: Sequence[str] | None = None,
             abstain: str = "oos", c: float | None = None, seed: int = 0) -> IntentHead:
    """Fit the head on embedded examples ``x`` with ``labels``. With a validation set,
    ``C`` (unless given) and the threshold are chosen there; validation rows labelled
    ``abstain`` are out of scope, and other labels the examples lack are refused."""
    xs = np.asarray(x, dtype=np.float64)
    ys = [str(v) for v in labels]
    if xs.ndim != 2 or xs.shape[0] != len(ys):
        raise ValueError(f"{xs.shape[0] if xs.ndim else 0} vectors but {len(ys)} labels")
    check_labels(ys, abstain)
    info: dict[str, Any] = {"train_examples": len(ys), "abstain": abstain}
    if val_x is None or val_labels is None:
        names, model = _logistic(xs, ys, DEFAULT_C if c is None else c, seed)
        info["c"] = DEFAULT_C if c is None else c
        return _head(names, model, None, info)
    vx = np.asarray(val_x, dtype=np.float64)
    vy = np.asarray([str(v) for v in val_labels])
    unknown = sorted(set(vy) - set(ys) - {abstain})
    if unknown:
        raise ValueError(f"validation labels with no training examples: "
                         f"{', '.join(unknown[:5])} (out-of-scope ones must be {abstain!r})")
    is_out = vy == abstain
    has_out = bool(is_out.any() and not is_out.all())
    unit = xs / np.maximum(np.linalg.norm(xs, axis=1, keepdims=True), 1e-12)
    near = (vx @ unit.T).max(axis=1) if has_out else None
    best: tuple[float, float, float, list[str], Any, float | None] | None = None
    # Ties go to the C nearest DEFAULT_C and to mix 1 (tried first).
    grid = sorted(C_GRID, key=lambda v: abs(np.log(v / DEFAULT_C))) if c is None else [c]
    for cv in grid:
        names, model = _logistic(xs, ys, cv, seed)
        p = model.predict_proba(vx)
        right = np.asarray(names)[p.argmax(axis=1)] == vy
        for mix in (MIX_GRID if near is not None else (1.0,)):
            if near is not None:
                s = mix * p.max(axis=1) + (1.0 - mix) * near
                t, score = balanced_threshold(s, right, is_out)
            else:
                t, score = None, float(right[~is_out].mean())
            info.setdefault("val_scores", {})[f"C={cv:g} mix={mix:g}"] = round(score, 4)
            if best is None or score > best[0] + 1e-9:
                best = (score, cv, mix, names, model, t)
    assert best is not None
    score, cv, mix, names, model, t = best
    info.update({"c": cv, "mix": mix, "val_items": len(vy),
                 "val_out_of_scope": int(is_out.sum()), "val_score": score,
                 "val_score_is": "balanced accuracy" if t is not None else "accuracy"})
    head = _head(names, model, t, info)
    if mix < 1.0:
        head.mix, head.examples = mix, unit.astype(np.float32)
    return head


def _head(names: list[str], model: Any, threshold: float | None,
          info: dict[str, Any]) -> IntentHead:
    w = np.asarray(model.coef_, dtype=np.float32)
    b = np.asarray(model.intercept_, dtype=np.float32)
    if len(names) == 2:  # binary: one row for the second class; softmax of (-z/2, z/2)
        w = np.stack([-w[0] / 2, w[0] / 2])
        b = np.asarray([-b[0] / 2, b[0] / 2], dtype=np.float32)
    return IntentHead(names, np.ascontiguousarray(w.T), b, threshold, info)


# -- the Router classifier --------------------------------------------------------------


class IntentClassifier(Classifier):
    """A saved IntentHead as a Router classifier: the most probable label, or an
    abstention (the Router's default route) below the threshold."""

    type = "intent"

    def __init__(self, head: IntentHead, embedder: Embedder, *,
                 threshold: float | None = None,
                 labels: Mapping[str, str] | None = None) -> None:
        rename = dict(labels or {})
        unknown = set(rename) - set(head.labels)
        if unknown:
            raise ValueError(f"labels name unknown intents: {', '.join(sorted(unknown))}")
        self.head, self.embedder = head, embedder
        self.threshold = head.threshold if threshold is None else threshold
        self.names = [rename.get(lb, lb) for lb in head.labels]
        self.labels = tuple(self.names)

    async def classify(self, request: Request) -> Decision:
        x = await self.embedder.embed([request.prompt])
        # One BLAS thread for these small products: a second one waits for a core on a
        # busy machine, and spins on after the call, slowing the next query's encode.
        with one_blas_thread():
            ps = self.head.proba(x)
            conf = float(self.head.score(x, ps)[0])
        p = ps[0]
        j = int(p.argmax())
        best = self.names[j]
        what = "probability" if self.head.mix >= 1.0 else "score"
        top = np.argsort(-p)[:5]
        scores = {self.names[int(i)]: float(p[int(i)]) for i in top}
        if self.threshold is not None and conf < self.threshold:
            return Decision(None, f"{best} {what} {conf:.2f} < threshold "
                            f"{self.threshold:g}", conf, scores)
        return Decision(best, f"{best} {what} {conf:.2f}", conf, scores)


class IntentClassifierConfig(Node):
    type: Literal["intent"]
    #: The folder ``chorus router fit --intents`` wrote (relative to the config file).
    path: str
    #: Abstain below this score (the top probability, mixed with the nearest example's
    #: similarity when the head was fitted so; default: the one chosen on validation).
    threshold: float | None = Field(None, ge=0, le=1)
    #: Rename labels: fitted intent -> route name.
    labels: dict[str, str] = Field(default_factory=dict)
    #: Default: the encoder fine-tuned with the head when there is one, else local MiniLM.
    embedder: str | dict[str, Any] | None = None


def build_classifier(cfg: IntentClassifierConfig, b: BuildContext,
                     routes: list[str]) -> IntentClassifier:
    path = config_path(b, cfg.path)
    try:
        head = IntentHead.load(path)
    except ValueError as exc:
        raise b.error(str(exc), "path") from None
    ref: str | dict[str, Any] | None = cfg.embedder
    if ref is None and head.encoder is not None:
        ref = {"kind": "minilm", "path": str(head.encoder)}
    try:
        return IntentClassifier(head, b.embedder(ref, "embedder"), threshold=cfg.threshold,
                                labels=cfg.labels)
    except ValueError as exc:
        raise b.error(str(exc), "labels") from None
