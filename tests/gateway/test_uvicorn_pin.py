"""gateway/_uvicorn.py subclasses an internal of uvicorn (HttpToolsProtocol), which may
change in any release: uvicorn is pinned below the next release, and an installed uvicorn
outside the pin (an upgrade that skipped it) fails here, before the gateway misbehaves.
Raising the bound means re-running tests/gateway/test_uvicorn_protocol.py against it."""

from __future__ import annotations

import importlib.metadata
import inspect
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _pin() -> Requirement:
    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    return next(Requirement(d) for d in deps if Requirement(d).name == "uvicorn")


def test_uvicorn_has_an_upper_bound() -> None:
    assert any(s.operator in ("<", "<=", "==", "~=") for s in _pin().specifier)


def test_the_installed_uvicorn_is_one_the_protocol_was_checked_against() -> None:
    installed = Version(importlib.metadata.version("uvicorn"))
    assert installed in _pin().specifier, (
        f"uvicorn {installed} is outside {_pin()}: check gateway/_uvicorn.py against it")


def test_the_internals_it_relies_on_are_there() -> None:
    # The subclass wraps the transport handed to connection_made and reads self.loop.
    params = list(inspect.signature(HttpToolsProtocol.connection_made).parameters)
    assert params == ["self", "transport"]
    assert "self.loop" in inspect.getsource(HttpToolsProtocol.__init__)
    assert "self.transport.write" in inspect.getsource(HttpToolsProtocol)
