"""The chat endpoint's request deadline (gateway/app.py ``_answer``: what ``call`` under
``asyncio.timeout`` did, with one timer), and how it reads request bodies."""

from __future__ import annotations

import asyncio
import time

import pytest

from chorus.core import context
from chorus.core.errors import DeadlineExceeded
from chorus.core.types import Request
from chorus.gateway import Gateway
from chorus.gateway.app import _answer, _Endpoint
from chorus.gateway.metrics import Metrics
from chorus.gateway.openai_wire import ChatRequest, WireError
from chorus.providers.function import FunctionModel


def sleeper(seconds: float, seen: list[float | None]) -> FunctionModel:
    async def fn(request: Request) -> str:
        seen.append(context.remaining())
        await asyncio.sleep(seconds)
        return "done"
    return FunctionModel("sleepy", fn)


async def test_an_answer_in_time_stands_and_the_model_sees_the_deadline() -> None:
    seen: list[float | None] = []
    answer = await _answer(sleeper(0.01, seen), Request.of("hi"), 5.0)
    assert answer.text == "done"
    assert seen[0] is not None and 4.5 < seen[0] <= 5.0
    await asyncio.sleep(0.01)  # the timer was cancelled: nothing cancels this task now


async def test_a_late_model_raises_deadline_exceeded_on_time() -> None:
    seen: list[float | None] = []
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="'sleepy' did not answer before"):
        await _answer(sleeper(5, seen), Request.of("hi"), 0.1)
    assert 0.08 < time.monotonic() - started < 1
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # the timer's cancel was taken back
    await asyncio.sleep(0.01)


async def test_a_cancel_from_outside_stays_a_cancel() -> None:
    seen: list[float | None] = []
    task = asyncio.create_task(_answer(sleeper(5, seen), Request.of("hi"), 5.0))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_no_timeout_means_no_deadline() -> None:
    seen: list[float | None] = []
    assert (await _answer(sleeper(0, seen), Request.of("hi"), None)).text == "done"
    assert seen == [None]


# -- reading the body (one pass of pydantic over the raw JSON) ---------------------------

@pytest.mark.parametrize(("raw", "code", "message"), [
    (b"{nope", "invalid_json", "not valid JSON"),
    (b'{"model": "m", "messages": []} and more', "invalid_json", "not valid JSON"),
    (b"[1, 2]", "invalid_json", "must be a JSON object"),
    (b'{"model": "m", "messages": []}', "invalid_value", "messages: List should have"),
    (b'{"model": "m"}', "missing_field", "messages: Field required"),
])
async def test_bodies_are_refused_with_openai_style_errors(raw: bytes, code: str,
                                                           message: str) -> None:
    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": raw, "more_body": False}

    with pytest.raises(WireError) as info:
        endpoint = _Endpoint(Gateway({}), Metrics(), "chat")
        await endpoint._parse(receive, ChatRequest, {"headers": []})
    assert info.value.status == 400 and info.value.code == code
    assert message in info.value.message


async def test_a_valid_body_parses() -> None:
    async def receive() -> dict[str, object]:
        return {"type": "http.request", "more_body": False,
                "body": b'{"model": "m", "messages": [{"role": "user", "content": "hi"}],'
                        b' "max_tokens": 8, "user": "ignored"}'}

    body = await _Endpoint(Gateway({}), Metrics(), "chat")._parse(receive, ChatRequest,
                                                                  {"headers": []})
    assert (body.model, body.max_tokens, body.messages[0].content) == ("m", 8, "hi")
