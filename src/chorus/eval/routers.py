"""Fitting and evaluating learned routers on outcome tables (what ``chorus router fit``
and ``chorus router eval`` and the router benchmark run).

Embeddings of a table's prompts are cached in a ``.npy`` file keyed by a hash of the
prompts and the embedder's name (``embedding_cache()``: the user's cache folder), so reruns
and other commands on the same table skip the embedding step.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chorus.embeddings import Embedder, Vectors
from chorus.eval.metrics import (
    Point,
    RouterMetrics,
    aiq,
    apgr,
    cpt,
    random_curve,
    router_metrics,
)
from chorus.eval.outcomes import OutcomeItem, matrices, models_of
from chorus.routing.learned import (
    Kind,
    OutcomePredictor,
    choose,
    curve_points,
    fit,
    sweep,
)

__all__ = ["RouterEval", "embed_rows", "embedding_cache", "fit_router", "evaluate_router",
           "single_points", "prompt_chars"]


def embedding_cache() -> Path:
    """Where prompt embeddings are cached: ``$XDG_CACHE_HOME/chorus/embeddings``
    (``~/.cache/chorus/embeddings``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "chorus" / "embeddings"


#: Bumped whenever an embedder's vectors for the same text change (2: the local MiniLM
#: embeds texts past its window whole instead of cutting them).
_CACHE_VERSION = 2


def cache_key(texts: Sequence[str], embedder: Embedder, tag: str = "") -> str:
    """The cache key of ``texts``' vectors: ``tag``, the embedder (its class, name, backend
    and model folder, and how its vectors are made) and every text; vectors made another
    way never match."""
    made_by = (f"{tag}{_CACHE_VERSION}:{type(embedder).__name__}:{embedder.name}:"
               f"{getattr(embedder, 'backend', '')}:{getattr(embedder, 'path', '')}")
    h = hashlib.sha1(made_by.encode())
    for t in texts:
        h.update(t.encode("utf-8", "replace"))
        h.update(b"\0")
    return h.hexdigest()[:16]


async def embed_cached(texts: Sequence[str], embedder: Embedder,
                       cache_dir: str | Path | None, *, prefix: str, tag: str = "",
                       batch: int = 512, on_batch: Callable[[int], None] | None = None
                       ) -> Vectors:
    """One unit row per text, read from / written to ``cache_dir`` (as
    ``{prefix}-{key}.npy``) when given; ``on_batch(n)`` after each batch of ``n`` texts."""
    path = (Path(cache_dir) / f"{prefix}-{cache_key(texts, embedder, tag)}.npy"
            if cache_dir else None)
    if path is not None and path.is_file():
        cached = np.load(path)
        if cached.shape[0] == len(texts):
            return np.asarray(cached, dtype=np.float32)
    parts = []
    for i in range(0, len(texts), batch):
        parts.append(await embedder.embed(list(texts[i:i + batch])))
        if on_batch is not None:
            on_batch(len(parts[-1]))
    x = np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, x)
    return x


async def embed_rows(rows: Sequence[OutcomeItem], embedder: Embedder,
                     cache_dir: str | Path | None = None, batch: int = 512,
                     on_batch: Callable[[int], None] | None = None) -> Vectors:
    """One unit row per item's prompt, read from / written to the cache when given;
    ``on_batch(n)`` after each batch of ``n`` prompts is embedded. A batch of at least
    ``chorus.embeddings.local.BULK`` prompts lets the local MiniLM run its bulk path."""
    return await embed_cached([r.prompt for r in rows], embedder, cache_dir, prefix="emb",
                              batch=batch, on_batch=on_batch)


def _scores_costs(rows: Sequence[OutcomeItem], models: Sequence[str]
                  ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    return matrices(rows, models)


def fit_router(rows: Sequence[OutcomeItem], x: Vectors, *, kind: Kind = "knn",
               models: Sequence[str] | None = None, **options: Any) -> OutcomePredictor:
    """Fit a router on a table (all its models unless ``models`` names some)."""
    names = list(models) if models else models_of(rows)
    scores, costs = _scores_costs(rows, names)
    return fit(np.asarray(x, dtype=np.float64), scores, costs, names, kind=kind,
               chars=prompt_chars(rows), **options)


def prompt_chars(rows: Sequence[OutcomeItem]) -> np.ndarray[Any, Any]:
    """Each row's prompt length in characters: what a router priced by length reads."""
    return np.array([len(r.prompt) for r in rows], dtype=np.float64)


def single_points(rows: Sequence[OutcomeItem], models: Sequence[str]) -> dict[str, Point]:
    """Each model on its own: total cost and mean score (missing scores count 0)."""
    scores, costs = _scores_costs(rows, models)
    return {m: Point(float(np.nansum(costs[:, j])),
                     float(np.mean(np.nan_to_num(scores[:, j], nan=0.0))))
            for j, m in enumerate(models)}


@dataclass(frozen=True, slots=True)
class RouterEval:
    curve: list[Point]
    singles: dict[str, Point]
    metrics: RouterMetrics
    random: RouterMetrics
    at_default: Point
    #: The same in RouteLLM's terms: cost is the share of calls to the strong model.
    calls: RouterMetrics

    def to_dict(self) -> dict[str, Any]:
        m = self.metrics
        return {
            "apgr": m.apgr, "cpt50": m.cpt50, "cpt80": m.cpt80, "aiq": m.aiq,
            "weak": m.weak, "strong": m.strong,
            "random": {"apgr": self.random.apgr, "cpt50": self.random.cpt50,
                       "cpt80": self.random.cpt80, "aiq": self.random.aiq},
            "by_calls": {"apgr": self.calls.apgr, "cpt50": self.calls.cpt50,
                         "cpt80": self.calls.cpt80},
            "at_default_knob": {"cost_usd": self.at_default.cost_usd,
                                "quality": self.at_default.quality,
                                "willingness_to_pay": self.at_default.knob},
            "singles": {k: {"cost_usd": p.cost_usd, "quality": p.quality}
                        for k, p in self.singles.items()},
            "curve": [{"cost_usd": p.cost_usd, "quality": p.quality,
                       "willingness_to_pay": p.knob} for p in self.curve],
        }


def evaluate_router(router: OutcomePredictor, rows: Sequence[OutcomeItem], x: Vectors
                    ) -> RouterEval:
    """The router's curve over its knob on ``rows`` (a point at every distinct decision)
    and the metrics against the same
    models used alone (and against a random weak/strong router)."""
    missing = [m for m in router.models if not any(m in r.outcomes for r in rows)]
    if missing:
        raise ValueError(f"the table has no outcomes for: {', '.join(missing)}")
    scores, costs = _scores_costs(rows, router.models)
    pred = router.predict(x)
    rel = router.relative_costs(prompt_chars(rows))
    curve = [Point(cost, quality, lam) for lam, cost, quality in sweep(pred, rel, scores, costs)]
    cost, quality = curve_points(choose(pred, rel, router.willingness_to_pay), scores, costs)
    singles = single_points(rows, router.models)
    metrics = router_metrics(curve, singles)
    rnd = router_metrics(random_curve(singles[metrics.weak], singles[metrics.strong], 51),
                         singles)
    # In calls every call of a model costs the same, whatever its prompt: the router
    # prices them so there (at each model's mean cost), not by the prompt's length.
    return RouterEval(curve, singles, metrics, rnd,
                      Point(cost, quality, router.willingness_to_pay),
                      by_calls(pred, router.relative_costs(), scores, router.models, metrics))


def by_calls(pred: Any, rel: Any, scores: Any, models: Sequence[str], metrics: RouterMetrics
             ) -> RouterMetrics:
    """The same router measured as RouteLLM measures one: its cost is the share of items
    sent to the strong model, the others free, so a call costs the same whatever its
    prompt. ``metrics``: the dollar measure, whose weak and strong models it keeps."""
    j = list(models).index(metrics.strong)
    calls = np.zeros(scores.shape)
    calls[:, j] = 1.0
    curve = [Point(c, q, lam) for lam, c, q in sweep(pred, rel, scores, calls)]
    n = float(len(scores))
    quality = np.mean(np.nan_to_num(scores, nan=0.0), axis=0)
    weak = Point(0.0, float(quality[list(models).index(metrics.weak)]))
    strong = Point(n, float(quality[j]))
    return RouterMetrics(apgr(curve, weak, strong), cpt(curve, weak, strong, 0.5),
                         cpt(curve, weak, strong, 0.8), aiq(curve, 0.0, n), metrics.weak,
                         metrics.strong)
