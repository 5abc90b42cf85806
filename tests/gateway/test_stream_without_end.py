"""A served system whose stream ends without its final Completion: every streaming
endpoint (chat, legacy completions, responses) sends what came, then an error event that
says the stream was malformed, never a normal end ([DONE] or response.completed)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from chorus.core import Completion, Request, StreamEvent, TextDelta
from chorus.gateway import Gateway, create_app
from chorus.providers import ScriptedModel
from tests.gateway.conftest import serving


class NoEnd(ScriptedModel):
    """Streams two pieces and stops, without the final Completion."""

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        yield TextDelta("half ", self.name)
        yield TextDelta("an answer", self.name)


class Whole(ScriptedModel):
    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        yield TextDelta("whole", self.name)
        yield Completion("whole", self.name)


def test_a_stream_without_its_end_is_an_error_on_every_endpoint() -> None:
    gw = Gateway({"cut": NoEnd("cut"), "ok": Whole("ok")})
    msgs = [{"role": "user", "content": "x"}]
    with serving(create_app(gw)) as url, httpx.Client(base_url=url) as http:
        for system, broken in (("cut", True), ("ok", False)):
            chat = http.post("/v1/chat/completions",
                             json={"model": system, "messages": msgs, "stream": True})
            legacy = http.post("/v1/completions",
                               json={"model": system, "prompt": "x", "stream": True})
            resp = http.post("/v1/responses",
                             json={"model": system, "input": "x", "stream": True})
            for r in (chat, legacy, resp):
                assert r.status_code == 200, r.text
            if broken:
                for r in (chat, legacy):
                    assert "half " in r.text and "an answer" in r.text
                    assert "[DONE]" not in r.text
                    assert "ended without a final completion" in r.text
                assert "ended without a final completion" in resp.text
                assert "response.completed" not in resp.text
            else:
                assert "[DONE]" in chat.text and "[DONE]" in legacy.text
                assert "response.completed" in resp.text
