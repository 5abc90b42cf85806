"""The ``store`` fixture: one behaviour suite over every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chorus.stores import Store
from tests.stores._backends import BACKENDS, open_backend


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    backend = open_backend(request.param, tmp_path, request)
    await backend.ping()
    yield backend
    await backend.aclose()
