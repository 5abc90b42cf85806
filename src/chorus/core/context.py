"""Per-request state carried with contextvars: deadline, cancellation, shared stores.

A pattern never threads bookkeeping through its arguments: a child call made inside
``with scope(deadline_s=5):`` sees the deadline through ``current()``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chorus.core.errors import Cancelled, DeadlineExceeded

if TYPE_CHECKING:
    from chorus.core.model import LeafHook

__all__ = ["Context", "current", "remaining", "check", "scope"]


@dataclass(frozen=True, slots=True)
class Context:
    """What every call in one request shares. ``deadline`` is a ``time.monotonic()``."""

    deadline: float | None = None
    # Each scope has its own flag; cancelling a scope cancels the scopes below it, never
    # its parent (so one cancelled request cannot poison the next).
    cancelled: list[bool] = field(default_factory=lambda: [False])
    parent: Context | None = None
    # Named state shared by the calls of one request (stores, tenant ...).
    values: dict[str, Any] = field(default_factory=dict)
    #: What every leaf call below goes through (a budget's reservations), if anything.
    leaf_hook: LeafHook | None = None

    def cancel(self) -> None:
        self.cancelled[0] = True

    @property
    def is_cancelled(self) -> bool:
        ctx: Context | None = self
        while ctx is not None:
            if ctx.cancelled[0]:
                return True
            ctx = ctx.parent
        return False


_ROOT = Context()
_current: ContextVar[Context] = ContextVar("chorus_context", default=_ROOT)


def current() -> Context:
    return _current.get()


def remaining() -> float | None:
    """Seconds left before the deadline, or None when there is none."""
    d = _current.get().deadline
    return None if d is None else d - time.monotonic()


def check() -> None:
    """Raise if the current request is cancelled or past its deadline."""
    ctx = _current.get()
    if ctx.is_cancelled:
        raise Cancelled("the request was cancelled")
    if ctx.deadline is not None and time.monotonic() >= ctx.deadline:
        raise DeadlineExceeded("the request's deadline passed")


@contextlib.contextmanager
def scope(*, deadline_s: float | None = None, leaf_hook: LeafHook | None = None,
          **values: Any) -> Iterator[Context]:
    """Enter a child context; a deadline can only be tightened, never extended. A
    ``leaf_hook`` replaces the parent's for the calls below (none given: the parent's)."""
    parent = _current.get()
    deadline = parent.deadline
    if deadline_s is not None:
        mine = time.monotonic() + deadline_s
        deadline = mine if deadline is None else min(deadline, mine)
    # Every field given: the constructor, not dataclasses.replace (several times slower,
    # and this runs for every gateway request).
    ctx = Context(deadline, [False], parent,
                  {**parent.values, **values} if values else parent.values,
                  leaf_hook if leaf_hook is not None else parent.leaf_hook)
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
