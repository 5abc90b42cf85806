"""Semantic cache: a hit when a new prompt means nearly the same as a cached one.

    SemanticCache("faq", model, embedder, threshold=0.9, ttl_s=86400)

A prompt hits when the cosine similarity of its embedding to a cached prompt's is at least
``threshold`` *and* the words do not say they differ (``chorus.meaning.conflict``: a
negation, another number, date or name, the opposite direction, swapped roles, or a word
in each that the other lacks, unless WordNet lists the two as synonyms: "movie" / "film"
hits, "ascending" / "descending" does not). Similarity alone serves "Cancel my order
1234" for "Do not cancel my order 1234" (cosine 0.98); the trace names each cached
prompt that was close enough but refused, and why. Entries are scoped: per cache, per tenant
(``metadata["tenant"]``; tenants never see each other's entries), and per context (the
inner model's identity, the other messages and the parameters must match exactly, only the
last user message is compared by meaning). Each entry stores its vector as float32 bytes;
every process keeps a mirror of a scope's vectors as one numpy matrix, reloaded when the
scope's counter in the store shows another process changed it (fine to ~10k entries per
scope). ``max_entries`` caps each scope.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

import numpy as np
from pydantic import Field

from chorus.core.model import Model
from chorus.core.registry import BuildContext
from chorus.core.types import Completion, Request
from chorus.embeddings import Embedder, Vectors
from chorus.meaning import conflict
from chorus.policies._cachekey import decode_entry, encode_entry, request_key
from chorus.policies.cache import CacheOptions, CachePolicy, Lookup, tenant_of
from chorus.stores import Store, decode_number

__all__ = ["SemanticCache", "SemanticCacheConfig", "best_match", "build", "candidates",
           "oldest"]


# -- decisions (no I/O) ----------------------------------------------------------------


def best_match(matrix: Vectors, alive: np.ndarray[Any, np.dtype[np.bool_]], query: Vectors,
               threshold: float) -> tuple[int | None, float]:
    """The row of ``matrix`` (unit rows) most similar to ``query`` among the ``alive`` ones,
    if at least ``threshold``; with the best similarity seen (-1.0 when none)."""
    if matrix.shape[0] == 0 or not alive.any():
        return None, -1.0
    # einsum, not ``@``: a matrix-vector product through a multi-threaded BLAS pays thread
    # wake-ups that cost milliseconds on a busy machine; einsum's one-thread loop does not.
    scores = np.einsum("ij,j->i", matrix, np.asarray(query, np.float32))
    scores = np.where(alive, scores, -np.inf)
    best = int(np.argmax(scores))
    score = float(scores[best])
    return (best if score >= threshold else None), score


def candidates(matrix: Vectors, alive: np.ndarray[Any, np.dtype[np.bool_]], query: Vectors,
               threshold: float, limit: int = 8) -> tuple[list[tuple[int, float]], float]:
    """The ``alive`` rows of ``matrix`` at least ``threshold`` similar to ``query``, most
    similar first (at most ``limit``), and the best similarity seen (-1.0 when none)."""
    if matrix.shape[0] == 0 or not alive.any():
        return [], -1.0
    scores = np.einsum("ij,j->i", matrix, np.asarray(query, np.float32))
    scores = np.where(alive, scores, -np.inf)
    above = np.flatnonzero(scores >= threshold)
    order = above[np.argsort(-scores[above], kind="stable")][:limit]
    return [(int(i), float(scores[i])) for i in order], float(scores.max())


def oldest(created: np.ndarray[Any, np.dtype[np.float64]], cap: int) -> list[int]:
    """The rows to evict so that at most ``cap`` remain: the oldest first."""
    excess = created.shape[0] - cap
    return [] if excess <= 0 else [int(i) for i in np.argsort(created, kind="stable")[:excess]]


# -- the in-process mirror of one scope ------------------------------------------------


@dataclass(slots=True)
class _Mirror:
    """One scope's entries in this process: keys, prompts, vectors, creation and expiry."""

    version: float
    dim: int = 0
    keys: list[str] = field(default_factory=list)
    prompts: dict[str, int] = field(default_factory=dict)
    texts: list[str] = field(default_factory=list)
    # Rows beyond ``len(keys)`` are spare capacity, so appending is amortised O(dim).
    buffer: Vectors = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    # Per row: created, expires (time.time(); inf for never).
    times: np.ndarray[Any, np.dtype[np.float64]] = field(
        default_factory=lambda: np.zeros((0, 2), np.float64))

    @property
    def matrix(self) -> Vectors:
        return self.buffer[: len(self.keys)]

    @property
    def created(self) -> np.ndarray[Any, np.dtype[np.float64]]:
        return self.times[: len(self.keys), 0]

    @property
    def expires(self) -> np.ndarray[Any, np.dtype[np.float64]]:
        return self.times[: len(self.keys), 1]

    def add(self, key: str, prompt: str, vector: Vectors, created: float,
            expires: float) -> None:
        n = len(self.keys)
        if self.dim == 0:
            self.dim = int(vector.shape[0])
            self.buffer = np.zeros((16, self.dim), np.float32)
            self.times = np.zeros((16, 2), np.float64)
        if vector.shape[0] != self.dim:
            return  # written with another embedder: it can never match
        if n == self.buffer.shape[0]:
            size = max(16, 2 * n)
            grown, times = np.zeros((size, self.dim), np.float32), np.zeros((size, 2))
            grown[:n], times[:n] = self.buffer[:n], self.times[:n]
            self.buffer, self.times = grown, times
        self.buffer[n] = vector
        self.times[n] = (created, expires)
        self.keys.append(key)
        self.texts.append(prompt)
        self.prompts[prompt] = n

    def remove(self, rows: list[int]) -> None:
        keep = np.setdiff1d(np.arange(len(self.keys)), np.asarray(rows, dtype=np.int64))
        by_row = {row: p for p, row in self.prompts.items()}
        self.buffer = self.matrix[keep]
        self.times = self.times[: len(self.keys)][keep]
        self.keys = [self.keys[i] for i in keep]
        self.texts = [self.texts[i] for i in keep]
        self.prompts = {by_row[int(i)]: j for j, i in enumerate(keep) if int(i) in by_row}


def _encode(header: dict[str, Any], vector: Vectors) -> bytes:
    # JSON never holds a raw newline, so the first one ends the header.
    return json.dumps(header, separators=(",", ":")).encode() + b"\n" + \
        np.asarray(vector, np.float32).tobytes()


def _decode(raw: bytes) -> tuple[dict[str, Any], Vectors]:
    head, _, vec = raw.partition(b"\n")
    return json.loads(head), np.frombuffer(vec, dtype=np.float32)


# -- the policy --------------------------------------------------------------------------


class SemanticCache(CachePolicy):
    """Answers prompts close in meaning to a cached one, within one tenant and context."""

    def __init__(
        self,
        name: str,
        inner: Model,
        embedder: Embedder,
        store: Store | None = None,
        *,
        threshold: float = 0.9,
        ttl_s: float | None = None,
        max_entries: int | None = None,
        cache_sampling: bool = False,
        namespace: str | None = None,
    ) -> None:
        super().__init__(name, inner, store, ttl_s=ttl_s, max_entries=max_entries,
                         cache_sampling=cache_sampling)
        if not -1.0 <= threshold <= 1.0:
            raise ValueError("threshold must be a cosine similarity in [-1, 1]")
        self.embedder = embedder
        self.threshold = threshold
        self.prefix = f"scache:{quote(namespace or name, safe='')}:"
        self._mirrors: dict[str, _Mirror] = {}

    def scope_of(self, request: Request) -> str:
        """The store prefix of ``request``'s scope: this cache, its tenant, its context."""
        context = request_key(self.identity, request, prompt=False)[:24]
        return f"{self.prefix}{quote(tenant_of(request), safe='')}:{context}:"

    async def _mirror(self, scope: str) -> _Mirror:
        raw = await self.store.get(scope + "n")
        version = 0.0 if raw is None else decode_number(raw)
        mirror = self._mirrors.get(scope)
        if mirror is not None and mirror.version == version:
            return mirror
        mirror = _Mirror(version)
        loaded = []
        for key in await self.store.scan(scope + "e:"):
            found = await self.store.get(key)
            if found is None:
                continue
            try:
                header, vector = _decode(found)
                loaded.append((float(header["created"]), key, header, vector))
            except (ValueError, KeyError, TypeError):
                continue  # not an entry (or a damaged one): never matches
        for created, key, header, vector in sorted(loaded, key=lambda t: t[0]):
            mirror.add(key, str(header["prompt"]), vector, created,
                       float(header.get("expires") or np.inf))
        self._mirrors[scope] = mirror
        return mirror

    async def _lookup(self, request: Request) -> Lookup:
        scope = self.scope_of(request)
        prompt = request.prompt
        tenant = tenant_of(request)
        attributes: dict[str, Any] = {"mode": "semantic", "threshold": self.threshold,
                                      "tenant": tenant or None, "store": self.store.name}
        mirror = await self._mirror(scope)
        vector: Vectors | None = None
        alive = mirror.expires > time.time()
        row = mirror.prompts.get(prompt)
        score = 1.0
        if row is None or not alive[row]:
            vector = (await self.embedder.embed([prompt]))[0]
            found, score = candidates(mirror.matrix, alive, vector, self.threshold)
            row, refused = None, []
            for r, similarity in found:
                why = conflict(mirror.texts[r], prompt)
                if why is None:
                    row, score = r, similarity
                    break
                refused.append({"prompt": mirror.texts[r][:200],
                                "similarity": round(similarity, 4), "reason": why})
            if refused:
                attributes["refused"] = refused
        attributes["similarity"] = round(score, 4)
        if row is not None:
            raw = await self.store.get(mirror.keys[row])
            try:
                if raw is not None:
                    header, _ = _decode(raw)
                    cached, _ = decode_entry(header["entry"], trace=False)
                    attributes["matched_prompt"] = str(header["prompt"])[:200]
                    return Lookup(cached, float(header["created"]), attributes)
            except (ValueError, KeyError, TypeError):
                await self.store.delete(mirror.keys[row])
            mirror.version = -1.0  # gone or damaged: reload on the next lookup
        return Lookup(None, 0.0, attributes, (scope, prompt, vector))

    async def add(self, request: Request, answer: Completion) -> None:
        """Store ``answer`` for ``request`` without asking the inner model (to warm a cache)."""
        scope = self.scope_of(request)
        await self._mirror(scope)
        await self._save((scope, request.prompt, None), answer)

    async def _save(self, token: Any, answer: Completion) -> dict[str, Any]:
        scope, prompt, vector = token
        if vector is None:
            vector = (await self.embedder.embed([prompt]))[0]
        now = time.time()
        expires = None if self.ttl_s is None else now + self.ttl_s
        key = f"{scope}e:{uuid.uuid4().hex}"
        entry = json.loads(encode_entry(answer, now))
        header = {"prompt": prompt, "created": now, "expires": expires, "entry": entry}
        await self.store.set(key, _encode(header, vector), self.ttl_s)
        mirror = self._mirrors.get(scope) or _Mirror(-1.0)
        self._mirrors[scope] = mirror
        # Expired rows are gone from the store already; drop them here too.
        dead = np.flatnonzero(mirror.expires <= now)
        if dead.size:
            mirror.remove([int(i) for i in dead])
        version = await self.store.incr(scope + "n", 1)
        # Only a mirror that saw every earlier change may follow this one in place.
        if version == mirror.version + 1:
            mirror.version = version
            mirror.add(key, prompt, vector, now, np.inf if expires is None else expires)
        else:
            mirror.version = -1.0
            return {}
        if self.max_entries is None:
            return {}
        evict = oldest(mirror.created, self.max_entries)
        if not evict:
            return {}
        for row in evict:
            await self.store.delete(mirror.keys[row])
        mirror.remove(evict)
        version = await self.store.incr(scope + "n", 1)
        mirror.version = version if version == mirror.version + 1 else -1.0
        return {"evicted": len(evict)}


# -- YAML --------------------------------------------------------------------------------


class SemanticCacheConfig(CacheOptions):
    kind: Literal["semantic_cache"] = "semantic_cache"
    #: A name under ``embedders:`` or an inline embedder (default: the local MiniLM).
    embedder: str | dict[str, Any] | None = None
    #: The least cosine similarity for a cached prompt to be considered; the words must
    #: then agree too (no negation, number, name or direction differs).
    threshold: float = Field(0.9, ge=-1.0, le=1.0)


def build(cfg: SemanticCacheConfig, b: BuildContext) -> SemanticCache:
    return SemanticCache(b.name, b.model(cfg.inner, "inner"), b.embedder(cfg.embedder, "embedder"),
                         b.store(cfg.store, "store"), threshold=cfg.threshold, ttl_s=cfg.ttl_s,
                         max_entries=cfg.max_entries, cache_sampling=cfg.cache_sampling,
                         namespace=cfg.namespace)
