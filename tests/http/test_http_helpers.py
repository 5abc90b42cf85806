"""The I/O-free helpers behind the HTTP providers: SSE parsing, Retry-After, error bodies."""

from __future__ import annotations

import email.utils

import aiohttp
import httpx
import pytest

from chorus.core.errors import (
    MalformedResponse,
    ProviderConnectionError,
    ProviderTimeout,
    ServerError,
)
from chorus.http._client import (
    error_detail,
    error_for_code,
    is_local,
    one_line,
    parse_retry_after,
    transport_error,
)
from chorus.http._h1 import H1Error
from chorus.http._sse import ServerSentEvent, iter_events


def test_sse_events_names_multiline_data_comments_and_crlf() -> None:
    lines = [": keep-alive", "event: message_start", 'data: {"a":', "data: 1}", "",
             "data: plain\r", "\r", "", "id: 7", "retry: 10", "data:no-space"]
    assert list(iter_events(lines)) == [
        ServerSentEvent('{"a":\n1}', "message_start"),
        ServerSentEvent("plain"),
        ServerSentEvent("no-space"),  # flushed at the end without a blank line
    ]


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("-3") == 0.0
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(30.0)
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_error_detail_reads_openai_anthropic_fastapi_and_text_bodies() -> None:
    assert error_detail('{"error": {"message": "bad key", "code": "invalid_api_key"}}') == (
        "bad key", "invalid_api_key")
    assert error_detail('{"type": "error", "error": {"type": "overloaded_error", '
                        '"message": "Overloaded"}}') == ("Overloaded", "overloaded_error")
    assert error_detail('{"detail": "Not Found"}') == ("Not Found", None)
    assert error_detail("<h1>Bad\nGateway</h1>") == ("<h1>Bad Gateway</h1>", None)


def test_code_wins_over_a_vague_status() -> None:
    err = error_for_code("overloaded_error", "Overloaded", model="m", model_id="c",
                         status=529)
    assert isinstance(err, ServerError) and err.retryable


def test_transport_errors_map_by_kind() -> None:
    url = "http://127.0.0.1:1/v1/chat/completions"
    timeout = transport_error(httpx.ReadTimeout("t"), model="m", url=url, timeout=2)
    refused = transport_error(httpx.ConnectError("[Errno 111] Connection refused"),
                              model="m", url=url, timeout=2)
    garbage = transport_error(httpx.RemoteProtocolError("illegal status line"), model="m",
                              url=url, timeout=2)
    dropped = transport_error(httpx.RemoteProtocolError("Server disconnected without sending "
                                                        "a response."), model="m", url=url,
                              timeout=2)
    assert isinstance(timeout, ProviderTimeout) and "2s" in str(timeout)
    assert isinstance(refused, ProviderConnectionError) and url in str(refused)
    assert isinstance(garbage, MalformedResponse)
    assert isinstance(dropped, ProviderConnectionError)


def test_small_helpers() -> None:
    assert is_local("http://127.0.0.1:8000/v1") and is_local("http://localhost/v1")
    assert not is_local("https://api.openai.com/v1")
    assert one_line("a\n b", 10) == "a b" and one_line("x" * 20, 10) == "xxxxxxx..."


@pytest.mark.parametrize(("failures", "kind"), [
    ((httpx.ReadTimeout("t"), aiohttp.SocketTimeoutError("t"), H1Error("read_timeout", "t")),
     ProviderTimeout),
    ((httpx.ConnectTimeout("t"), aiohttp.ConnectionTimeoutError("t"),
      H1Error("connect_timeout", "t")), ProviderTimeout),
    ((httpx.ConnectError("refused"), H1Error("connect", "refused")), ProviderConnectionError),
    ((httpx.RemoteProtocolError("bad line"), H1Error("malformed", "bad line")),
     MalformedResponse),
    ((httpx.ReadError("reset"), aiohttp.ServerDisconnectedError("reset"),
      H1Error("closed", "reset")), ProviderConnectionError),
])
def test_every_client_s_failure_is_worded_once(failures: tuple[Exception, ...],
                                                kind: type[Exception]) -> None:
    url = "http://127.0.0.1:9/v1/chat/completions"
    errors = [transport_error(f, model="m", url=url, timeout=2)  # type: ignore[arg-type]
              for f in failures]
    assert all(type(e) is kind for e in errors)
    assert len({str(e) for e in errors}) == 1, [str(e) for e in errors]
