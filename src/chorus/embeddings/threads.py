"""BLAS threads for small encodes: numpy's and torch's thread pools fight over a few
cores, and a short text gains nothing from several threads, so an encode of one short
query (and a decision that wraps one) runs BLAS on one thread."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

__all__ = ["one_blas_thread"]

_controller: list[Any] = []


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """BLAS on one thread inside the block (no-op without threadpoolctl). The limit is
    the process's (BLAS libraries keep one thread count), for the block's duration."""
    if not _controller:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _controller.append(None)
        else:
            _controller.append(ThreadpoolController())
    if _controller[0] is None:
        yield
        return
    with _controller[0].limit(limits=1, user_api="blas"):
        yield
