"""A user function that raises something other than a chorus error, inside a served
system: a typed JSON error with status 500, counted in the error metric, the details in
the server log (never in the answer)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from chorus.core import Completion, Request, StreamEvent, TextDelta, Usage
from chorus.gateway import Gateway, create_app
from chorus.providers import FunctionModel, ScriptedModel
from tests.gateway.conftest import serving


def boom(request: Request) -> str:
    raise ValueError("boom: a secret detail")


class HalfStream(ScriptedModel):
    """Streams one piece, then its own code fails."""

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        yield TextDelta("first ")
        raise KeyError("lost")
        yield Completion("never", self.name, Usage(0, 0))  # pragma: no cover


def _chat(system: str, stream: bool = False) -> dict[str, object]:
    return {"model": system, "messages": [{"role": "user", "content": "x"}], "stream": stream}


def test_a_raising_function_gives_a_typed_500_and_is_counted(
        caplog: pytest.LogCaptureFixture) -> None:
    gw = Gateway({"boom": FunctionModel("boom", boom), "ok": ScriptedModel("ok", default="y"),
                  "half": HalfStream("half")})
    with caplog.at_level(logging.ERROR, "chorus.gateway"), serving(create_app(gw)) as url, \
            httpx.Client(base_url=url) as http:
        r = http.post("/v1/chat/completions", json=_chat("boom"))
        assert r.status_code == 500
        err = r.json()["error"]
        assert err["type"] == "server_error" and err["code"] == "internal_error"
        assert "'boom'" in err["message"] and "ValueError" in err["message"]
        assert "secret" not in r.text
        # Streamed, failing before the first piece: the same status and body.
        r = http.post("/v1/chat/completions", json=_chat("boom", stream=True))
        assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
        # Failing after the first piece: the stream ends with the error event, no [DONE].
        r = http.post("/v1/chat/completions", json=_chat("half", stream=True))
        assert r.status_code == 200
        assert '"code":"internal_error"' in r.text and "[DONE]" not in r.text
        # The server keeps serving.
        assert http.post("/v1/chat/completions", json=_chat("ok")).status_code == 200
        metrics = http.get("/metrics").text
    assert 'chorus_gateway_errors_total{system="boom",code="internal_error"} 2' in metrics
    assert 'chorus_gateway_errors_total{system="half",code="internal_error"} 1' in metrics
    logged = [r for r in caplog.records if r.exc_info]
    assert any("secret detail" in str(r.exc_info[1]) for r in logged if r.exc_info)


def test_each_streaming_endpoint_ends_a_failing_stream_with_a_typed_error(
        caplog: pytest.LogCaptureFixture) -> None:
    """The Responses API and the legacy completions stream the same system: a failure of
    the system's own code after the first piece ends the stream with an internal_error
    event (never a second response start), logged and counted."""
    gw = Gateway({"half": HalfStream("half"), "ok": ScriptedModel("ok", default="y")})
    with caplog.at_level(logging.ERROR, "chorus.gateway"), serving(create_app(gw)) as url, \
            httpx.Client(base_url=url) as http:
        r = http.post("/v1/responses", json={"model": "half", "input": "x", "stream": True})
        assert r.status_code == 200
        assert "event: error" in r.text and '"code":"internal_error"' in r.text
        assert "response.completed" not in r.text and "lost" not in r.text
        r = http.post("/v1/completions", json={"model": "half", "prompt": "x", "stream": True})
        assert r.status_code == 200
        assert '"code":"internal_error"' in r.text and "[DONE]" not in r.text
        # The server keeps serving.
        assert http.post("/v1/responses", json={"model": "ok", "input": "x"}).status_code == 200
        metrics = http.get("/metrics").text
    assert 'chorus_gateway_errors_total{system="half",code="internal_error"} 2' in metrics
    assert sum(1 for r in caplog.records if r.exc_info) == 2
