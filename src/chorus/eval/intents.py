"""Fitting and evaluating intent routers (``chorus router fit --intents`` and
``chorus router eval --intents``): labelled utterances in, a saved ``IntentHead`` out.

An intent file is JSONL, one ``{"text": ..., "label": ...}`` per line, or a JSON/YAML
mapping of label to a list of utterances (the ``examples:`` of an embedding classifier).
Out-of-scope utterances in a validation or test file carry the abstention label (``oos``
by default).
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from chorus.config.loader import yaml_problem
from chorus.embeddings import Embedder, Vectors
from chorus.eval.datasets import csv_rows
from chorus.eval.routers import embed_cached
from chorus.routing.intent import IntentHead, fit_head

__all__ = ["IntentEval", "embed_texts", "evaluate_intents", "fit_intents", "read_intents",
           "readable_label"]


def read_intents(path: str | Path) -> list[tuple[str, str]]:
    """(text, label) pairs from a JSONL file of {"text", "label"} lines, a CSV (or .tsv)
    file with columns text and label (or utterance/query/sentence and intent/route), or a
    JSON/YAML mapping label -> texts."""
    p = Path(path)
    try:
        if p.suffix.lower() in (".csv", ".tsv"):
            return _csv_intents(p)
        raw = p.read_text("utf-8-sig")
    except OSError as exc:
        raise ValueError(f"cannot read {str(p)!r}: {exc.strerror or exc}") from None
    if p.suffix == ".jsonl":
        pairs = []
        for n, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{p}:{n}: not JSON ({exc.msg})") from None
            if not (isinstance(row, dict) and isinstance(row.get("text"), str)
                    and isinstance(row.get("label"), str)):
                raise ValueError(f"{p}:{n}: each line needs a string \"text\" and \"label\"")
            pairs.append((row["text"], row["label"]))
    else:
        try:
            doc = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            at, problem = yaml_problem(exc)
            raise ValueError(f"{p}{f':{at}' if at else ''}: not YAML or JSON "
                             f"({problem})") from None
        if not isinstance(doc, dict) or not all(
                isinstance(v, list) and all(isinstance(t, str) for t in v)
                for v in doc.values()):
            raise ValueError(f"{p}: expected a mapping of label to a list of utterances "
                             "(or a .jsonl file of {\"text\", \"label\"} lines, or a .csv "
                             "file with columns text and label)")
        pairs = [(t, str(label)) for label, texts in doc.items() for t in texts]
    if not pairs:
        raise ValueError(f"{p}: no utterances")
    return pairs


_TEXT_COLUMNS = ("text", "utterance", "query", "sentence")
_LABEL_COLUMNS = ("label", "intent", "route")


def _csv_intents(p: Path) -> list[tuple[str, str]]:
    rows = [(f"{p}:{n}", row) for n, row in csv_rows(p)]
    columns = list(rows[0][1]) if rows else []
    text = next((c for c in _TEXT_COLUMNS if c in columns), None)
    label = next((c for c in _LABEL_COLUMNS if c in columns), None)
    if text is None or label is None:
        raise ValueError(f"{p}: needs a header with columns text and label (or "
                         f"utterance/query/sentence and intent/route); it has "
                         f"{', '.join(repr(c) for c in columns) or 'no rows'}")
    pairs = []
    for where, row in rows:
        t, lab = (row.get(text) or "").strip(), (row.get(label) or "").strip()
        if not t or not lab:
            raise ValueError(f"{where}: needs a text and a label")
        pairs.append((t, lab))
    return pairs


async def embed_texts(texts: Sequence[str], embedder: Embedder,
                      cache_dir: str | Path | None = None, batch: int = 256,
                      on_batch: Callable[[int], None] | None = None) -> Vectors:
    """One unit row per text, read from / written to ``cache_dir`` when given."""
    return await embed_cached(texts, embedder, cache_dir, prefix="intents", tag="intents:",
                              batch=batch, on_batch=on_batch)


def readable_label(label: str) -> str:
    """A route's name as words: ``pin_change`` -> ``pin change``, ``TechSupport`` ->
    ``Tech Support``."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", label)
    return re.sub(r"[\s_\-.:/]+", " ", words).strip() or label


def fit_intents(train: Sequence[tuple[str, str]], out: str | Path,
                embed: Callable[[list[str]], Vectors] | None = None, *,
                val: Sequence[tuple[str, str]] | None = None, abstain: str = "oos",
                c: float | None = None, tune_epochs: int = 0, encoder: Path | None = None,
                seed: int = 0, on_step: Callable[[int, int], None] | None = None,
                label_names: bool | None = None) -> IntentHead:
    """Fit a head on ``train`` (embedded with ``embed``) and save it to ``out``. With
    ``tune_epochs`` > 0 the encoder in the folder ``encoder`` is first fine-tuned on the
    examples (``chorus.routing.intent_tune``), saved in ``out/encoder``, and embeds
    everything after. ``label_names``: each label's name, as words, joins the head's
    examples of it (a name such as ``card_declined`` is one more example, which counts
    most when there are few); None: when ``val`` scores the head higher with them."""
    texts = [t for t, _ in train]
    labels = [lb for _, lb in train]
    if abstain in labels:
        raise ValueError(f"training utterances are labelled {abstain!r}, the abstention "
                         "label: out-of-scope examples belong in --val")
    folder = Path(out)
    info: dict[str, Any] = {}
    staged: Path | None = None
    if tune_epochs > 0:
        from chorus.routing.intent_tune import finetune

        if encoder is None:
            raise ValueError("fine-tuning needs the encoder's model folder")
        staged = Path(tempfile.mkdtemp(prefix="chorus-intent-"))
        embed = finetune(encoder, texts, labels, staged / "encoder",
                         epochs=tune_epochs, seed=seed, on_step=on_step)
        info["encoder_tuned"] = {"epochs": tune_epochs, "from": str(encoder)}
    if embed is None:
        raise ValueError("give an embed function, or tune_epochs to fine-tune the encoder")
    try:
        x = embed(texts)
        vx = embed([t for t, _ in val]) if val else None
        vy = [lb for _, lb in val] if val else None
        head = fit_head(x, labels, val_x=vx, val_labels=vy, abstain=abstain, c=c, seed=seed)
        if label_names or (label_names is None and val):
            names = sorted(set(labels))
            named = fit_head(np.vstack([x, embed([readable_label(n) for n in names])]),
                             [*labels, *names], val_x=vx, val_labels=vy, abstain=abstain,
                             c=c, seed=seed)
            if val:
                info["label_names_val_score"] = {"with": named.info["val_score"],
                                                 "without": head.info["val_score"]}
            if label_names or named.info["val_score"] > head.info["val_score"] + 1e-9:
                head = named
                info["label_names"] = True
        info.setdefault("label_names", False)
        head.info.update(info)
        head.info["labels"] = len(head.labels)
        folder.mkdir(parents=True, exist_ok=True)
        if staged is not None:
            shutil.rmtree(folder / "encoder", ignore_errors=True)
            shutil.move(str(staged / "encoder"), str(folder / "encoder"))
        head.save(folder)
    finally:
        if staged is not None:
            shutil.rmtree(staged, ignore_errors=True)
    return IntentHead.load(folder)


@dataclass
class IntentEval:
    items: int
    in_scope: int
    out_of_scope: int
    accuracy: float  # all items, abstention right on out-of-scope ones
    in_scope_accuracy: float  # right label, at the threshold
    in_scope_accuracy_no_threshold: float
    oos_precision: float | None
    oos_recall: float | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def evaluate_intents(head: IntentHead, x: Vectors, labels: Sequence[str],
                     abstain: str = "oos", threshold: float | None = None) -> IntentEval:
    """Accuracy of the head on embedded utterances; ``abstain``-labelled ones are right
    when the head abstains."""
    gold = np.asarray(list(labels))
    said = np.asarray([abstain if p is None else p
                       for p in head.predict(x, threshold)])
    raw = np.asarray(head.labels)[head.proba(x).argmax(axis=1)]
    ins = gold != abstain
    n_in, n_out = int(ins.sum()), int((~ins).sum())
    abst = said == abstain
    tp = int(np.sum(abst & ~ins))
    return IntentEval(
        len(gold), n_in, n_out, float(np.mean(said == gold)),
        float(np.mean(said[ins] == gold[ins])) if n_in else 0.0,
        float(np.mean(raw[ins] == gold[ins])) if n_in else 0.0,
        tp / int(abst.sum()) if abst.any() else None,
        tp / n_out if n_out else None)
