"""What a model accepts, what a request needs, and the check between the two.

A leaf states the features it accepts (``Provider.accepts``): ``tools``, ``images``,
``json_schema`` and ``logprobs``, and its context window. Hosted models take theirs from
``BUILTIN_ACCEPTS`` by model id (longest matching prefix), the local models from what
llama.cpp can do (no images), the test doubles accept everything; YAML's ``accepts:``
overrides any of it. A composite or wrapper accepts what any of its children accepts:
whether it can serve a request is then decided child by child (a router, a fallback and
a cascade skip the children that cannot, and say so in the trace).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from chorus.core.errors import CapabilityMissing
from chorus.core.model import Model
from chorus.core.types import Request

__all__ = [
    "ALL_FEATURES",
    "BUILTIN_ACCEPTS",
    "accepts_of",
    "builtin_accepts",
    "check",
    "missing",
    "able",
]

#: Every feature a request may need.
ALL_FEATURES: Final = frozenset({"tools", "images", "json_schema", "logprobs"})

_T, _I, _J, _L = "tools", "images", "json_schema", "logprobs"

#: Hosted models by model-id prefix: the features each accepts and its context window.
#: Read from the providers' model pages (2026); YAML ``accepts:`` overrides an entry.
BUILTIN_ACCEPTS: Final[Mapping[str, tuple[frozenset[str], int]]] = {
    "gpt-5": (frozenset({_T, _I, _J}), 400_000),
    "gpt-4.1": (frozenset({_T, _I, _J, _L}), 1_047_576),
    "gpt-4o": (frozenset({_T, _I, _J, _L}), 128_000),
    "gpt-4-turbo": (frozenset({_T, _I, _J, _L}), 128_000),
    "gpt-4": (frozenset({_T, _L}), 8_192),
    "gpt-3.5-turbo": (frozenset({_T, _J, _L}), 16_385),
    "o1": (frozenset({_T, _I, _J}), 200_000),
    "o3": (frozenset({_T, _I, _J}), 200_000),
    "o4-mini": (frozenset({_T, _I, _J}), 200_000),
    "claude-": (frozenset({_T, _I, _J}), 200_000),
}


def builtin_accepts(model_id: str) -> tuple[frozenset[str], int] | None:
    """The table's entry for ``model_id`` (longest matching prefix), or None."""
    best = max((p for p in BUILTIN_ACCEPTS if model_id.startswith(p)), key=len, default=None)
    return BUILTIN_ACCEPTS[best] if best is not None else None


def accepts_of(model: Model) -> frozenset[str]:
    """The features ``model`` accepts: a leaf's own, else what any child accepts."""
    own = getattr(model, "accepts", None)
    if isinstance(own, frozenset):
        return own
    kids = model.children()
    if not kids:
        return ALL_FEATURES  # a model that states nothing is not second-guessed
    out: set[str] = set()
    for kid in kids:
        out |= accepts_of(kid)
    return frozenset(out)


def missing(model: Model, request: Request) -> frozenset[str]:
    """What ``request`` needs that ``model`` does not accept (empty when it can)."""
    needs = request.needs
    return needs - accepts_of(model) if needs else frozenset()


def able(models: Iterable[tuple[str, Model]], needs: frozenset[str]) -> list[str]:
    """The names among ``models`` that accept everything in ``needs``."""
    return [name for name, m in models if needs <= accepts_of(m)]


def check(model: Model, request: Request, *, others: Mapping[str, Model] | None = None
          ) -> None:
    """Raise ``CapabilityMissing`` when ``model`` cannot serve ``request``; ``others``
    (name to model) are searched for the ones that could, to say so."""
    lack = missing(model, request)
    if lack:
        names = able(others.items(), request.needs) if others is not None else None
        raise CapabilityMissing(model.name, lack, names)
