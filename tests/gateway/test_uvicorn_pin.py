"""gateway/_uvicorn.py subclasses an internal of uvicorn (HttpToolsProtocol), which may
change in any release: uvicorn is pinned below the next release, and an installed uvicorn
outside the pin (an upgrade that skipped it) fails here, before the gateway misbehaves.
Raising the bound means re-running tests/gateway/test_uvicorn_protocol.py against it."""

from __future__ import annotations

import importlib.metadata
import inspect
import tomllib
from pathlib import Path

import uvicorn.config
import uvicorn.server
from packaging.requirements import Requirement
from packaging.version import Version
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

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


def test_the_internals_the_read_limits_rely_on_are_there() -> None:
    # The parser callbacks it wraps, called with no argument besides self.
    for name in ("on_message_begin", "on_headers_complete", "on_message_complete"):
        assert list(inspect.signature(getattr(HttpToolsProtocol, name)).parameters) == ["self"]
    assert list(inspect.signature(HttpToolsProtocol.connection_lost).parameters) == [
        "self", "exc"]
    source = inspect.getsource(HttpToolsProtocol)
    for attribute in ("self.cycle", "self.pipeline", "self.client", "self.loop"):
        assert attribute in source
    # The flags of a request's cycle it reads and sets (keep_alive: close when answered).
    cycle = inspect.getsource(RequestResponseCycle)
    for flag in ("self.response_started", "self.response_complete", "self.keep_alive"):
        assert flag in cycle
    assert "if not self.keep_alive:\n                    self.transport.close()" in cycle
    # uvicorn takes a protocol that is not a string as it is, and makes one per connection
    # with keywords, so a functools.partial carrying the limits gets them.
    assert "self.http_protocol_class = self.http" in inspect.getsource(uvicorn.config.Config.load)
    startup = inspect.getsource(uvicorn.server.Server.startup)
    assert "config.http_protocol_class(" in startup and "config=config" in startup
