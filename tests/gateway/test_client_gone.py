"""A client that goes away while its system is still working (a chat UI's stop button,
a client's own timeout) stops that system: the gateway cancels it, so a local model stops
generating and a paid upstream call is closed, instead of running to its end for nobody.
The gateway notes it (no traceback) and counts it, and keeps serving."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from chorus.core import Completion, Request, StreamEvent, TextDelta, Usage
from chorus.core.errors import ProviderError
from chorus.gateway import Gateway, create_app
from chorus.providers import ScriptedModel
from tests.gateway.conftest import serving

PIECES = 200


class Slow(ScriptedModel):
    """Streams PIECES pieces, one every 20 ms (4 s in all); its answer without a stream
    takes as long. Counts the pieces it made and notes whether it was stopped."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.made = 0
        self.stopped = threading.Event()

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        try:
            for _ in range(PIECES):
                await asyncio.sleep(0.02)
                self.made += 1
                yield TextDelta("word ", self.name)
            yield Completion("word " * PIECES, self.name, Usage(1, PIECES))
        except (asyncio.CancelledError, GeneratorExit):
            self.stopped.set()
            raise

    async def complete(self, request: Request) -> Completion:
        try:
            for _ in range(PIECES):
                await asyncio.sleep(0.02)
                self.made += 1
        except asyncio.CancelledError:
            self.stopped.set()
            raise
        return Completion("word " * PIECES, self.name, Usage(1, PIECES))


def _bodies(system: str) -> list[tuple[str, dict[str, object]]]:
    return [("/v1/chat/completions",
             {"model": system, "messages": [{"role": "user", "content": "x"}], "stream": True}),
            ("/v1/completions", {"model": system, "prompt": "x", "stream": True}),
            ("/v1/responses", {"model": system, "input": "x", "stream": True})]


@pytest.mark.parametrize("path,body", _bodies("slow"), ids=["chat", "completions",
                                                             "responses"])
def test_closing_a_stream_stops_its_system(path: str, body: dict[str, object],
                                           caplog: pytest.LogCaptureFixture) -> None:
    slow = Slow("slow")
    gw = Gateway({"slow": slow, "ok": ScriptedModel("ok", default="y")})
    with caplog.at_level(logging.INFO, "chorus.gateway"), serving(create_app(gw)) as url, \
            httpx.Client(base_url=url) as http:
        with http.stream("POST", path, json=body) as r:
            assert r.status_code == 200
            next(r.iter_bytes())  # the first piece came: the system is running
        # The client closed the connection after the first piece.
        assert slow.stopped.wait(2.0), "the system ran on after its client left"
        made = slow.made
        time.sleep(0.2)
        assert slow.made == made < PIECES
        # The gateway keeps serving.
        assert http.post("/v1/chat/completions", json={
            "model": "ok", "messages": [{"role": "user", "content": "x"}]}).status_code == 200
        metrics = http.get("/metrics").text
    assert 'chorus_gateway_errors_total{system="slow",code="client_disconnected"} 1' in metrics
    assert "the client disconnected while 'slow' was answering" in caplog.text
    assert not [rec for rec in caplog.records if rec.exc_info]


def test_a_client_that_gives_up_waiting_stops_its_system() -> None:
    slow = Slow("slow")
    gw = Gateway({"slow": slow})
    with serving(create_app(gw)) as url, httpx.Client(base_url=url, timeout=0.3) as http:
        with pytest.raises(httpx.ReadTimeout):
            http.post("/v1/chat/completions",
                      json={"model": "slow", "messages": [{"role": "user", "content": "x"}]})
        assert slow.stopped.wait(2.0), "the system ran on after its client left"
        assert slow.made < PIECES


def test_a_whole_stream_is_not_cut_by_its_own_end() -> None:
    """The server's own end of the response is not a client leaving: a stream read to its
    end is whole, on every endpoint, and nothing is counted as a disconnect."""
    gw = Gateway({"quick": ScriptedModel("quick", default="a whole answer")})
    with serving(create_app(gw)) as url, httpx.Client(base_url=url) as http:
        for _ in range(3):
            for path, body in _bodies("quick"):
                r = http.post(path, json=body)
                assert r.status_code == 200
                assert "[DONE]" in r.text or "response.completed" in r.text
        metrics = http.get("/metrics").text
    assert "client_disconnected" not in metrics


class SlowFailure(ScriptedModel):
    """Fails after 150 ms, when the watch for its client is on."""

    async def complete(self, request: Request) -> Completion:
        await asyncio.sleep(0.15)
        raise ProviderError("the upstream said no", model=self.name, status_code=500)


def test_an_error_after_the_watch_began_reaches_the_client_whole() -> None:
    gw = Gateway({"late": SlowFailure("late")})
    with serving(create_app(gw)) as url, httpx.Client(base_url=url) as http:
        for _ in range(3):
            r = http.post("/v1/chat/completions",
                          json={"model": "late", "messages": [{"role": "user", "content": "x"}]})
            assert r.status_code >= 500 and "the upstream said no" in r.json()["error"]["message"]
        metrics = http.get("/metrics").text
    assert "client_disconnected" not in metrics
