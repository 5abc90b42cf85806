"""Composite Models: the multi-model patterns."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chorus.core.registry import Registry

__all__ = ["register"]


def register(registry: Registry) -> None:
    """Register the built-in patterns (the ``chorus.plugins`` entry point)."""
