"""Slow clients: a request's head and body must arrive within the gateway's limits
(``gateway.head_timeout_s``, ``gateway.body_timeout_s``), or the connection is answered
408 and closed. Real sockets on 127.0.0.1, the server started as ``chorus serve`` starts
it (its uvicorn options and protocol)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from chorus.config.schema import GatewayConfig
from chorus.gateway import Gateway, create_app
from chorus.gateway.server import uvicorn_options
from chorus.providers.scripted import ScriptedModel
from tests.gateway.conftest import serving

LIMIT = 1.0
SETTINGS = GatewayConfig(head_timeout_s=LIMIT, body_timeout_s=LIMIT)
BODY = json.dumps({"model": "echo", "messages": [{"role": "user", "content": "hi"}]}).encode()


@pytest.fixture
def url() -> Iterator[str]:
    gw = Gateway({"echo": ScriptedModel("echo", default="hello")}, settings=SETTINGS)
    with serving(create_app(gw), **uvicorn_options(gw.settings)) as base:
        yield base


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=LIMIT + 8)


def _until_closed(s: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    got = b""
    while chunk := s.recv(65536):
        got += chunk
    return got


def _head(length: int, path: str = "/v1/chat/completions") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            f"content-length: {length}\r\n\r\n").encode()


def test_a_partial_head_is_answered_408_and_closed_within_the_limit(url: str) -> None:
    with _connect(url) as s:
        t0 = time.monotonic()
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-le")
        answer = _until_closed(s)
        took = time.monotonic() - t0
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b'"code":"request_timeout"' in answer.replace(b" ", b"")
    assert b"head" in answer and b"connection: close" in answer.lower()
    assert LIMIT * 0.8 < took < LIMIT + 2


def test_a_connection_that_sends_nothing_is_closed_within_the_limit(url: str) -> None:
    with _connect(url) as s:
        t0 = time.monotonic()
        answer = _until_closed(s)
        took = time.monotonic() - t0
    # closed without a word, as an idle kept-alive connection is
    assert answer == b"" and LIMIT * 0.8 < took < LIMIT + 2


def test_a_head_trickled_one_byte_at_a_time_does_not_reset_the_limit(url: str) -> None:
    head = _head(len(BODY))
    with _connect(url) as s:
        t0 = time.monotonic()
        answer = b""
        for i in range(len(head)):  # a byte every 0.1 s: the head would take seconds
            try:
                s.sendall(head[i:i + 1])
            except OSError:
                break
            time.sleep(0.1)
            if time.monotonic() - t0 > LIMIT + 3:
                break
        answer = _until_closed(s)
        took = time.monotonic() - t0
    assert answer.startswith(b"HTTP/1.1 408 ") and took < LIMIT + 2


def test_twenty_slow_clients_are_all_let_go_within_the_limit(url: str) -> None:
    clients = [_connect(url) for _ in range(20)]
    t0 = time.monotonic()
    try:
        for s in clients:
            s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n")
        answers = [_until_closed(s) for s in clients]
    finally:
        for s in clients:
            s.close()
    assert time.monotonic() - t0 < LIMIT + 2
    assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers)
    # and the gateway still answers
    r = httpx.post(f"{url}/v1/chat/completions", content=BODY,
                   headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "hello"


def test_a_slow_body_is_answered_408_and_closed_within_the_limit(url: str) -> None:
    with _connect(url) as s:
        t0 = time.monotonic()
        s.sendall(_head(len(BODY)) + BODY[:5])
        answer = _until_closed(s)
        took = time.monotonic() - t0
    assert answer.startswith(b"HTTP/1.1 408 ") and b"body" in answer
    assert took < LIMIT + 2.5


def test_a_trickled_body_to_a_route_that_never_reads_it_is_cut_off(url: str) -> None:
    # /v1/models answers at once (405 for a POST) without reading the body; a client that
    # goes on sending it a byte at a time kept the connection for as long as it liked.
    with _connect(url) as s:
        t0 = time.monotonic()
        s.sendall(_head(10_000, "/v1/models"))
        closed_after = None
        for _ in range(int((LIMIT + 6) / 0.1)):
            try:
                s.sendall(b" ")
            except OSError:
                closed_after = time.monotonic() - t0
                break
            time.sleep(0.1)
    assert closed_after is not None and closed_after < LIMIT + 3


def test_prompt_clients_and_kept_alive_connections_are_not_cut(url: str) -> None:
    with httpx.Client(base_url=url) as client:
        for _ in range(3):
            r = client.post("/v1/chat/completions", content=BODY,
                            headers={"content-type": "application/json"})
            assert r.status_code == 200
            time.sleep(LIMIT * 0.6)  # idle between requests: the keep-alive's business
        r = client.post("/v1/chat/completions", content=BODY,
                        headers={"content-type": "application/json"})
        assert r.status_code == 200
    # a head and body sent slowly but within the limits
    with _connect(url) as s:
        s.sendall(_head(len(BODY))[:20])
        time.sleep(LIMIT * 0.5)
        s.sendall(_head(len(BODY))[20:] + BODY[:10])
        time.sleep(LIMIT * 0.5)
        s.sendall(BODY[10:])
        answer = s.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 ")


def test_the_limits_are_settings_with_sane_defaults() -> None:
    d = GatewayConfig()
    assert d.head_timeout_s == 10 and d.body_timeout_s == 15
    with pytest.raises(ValueError, match="head_timeout_s"):
        GatewayConfig(head_timeout_s=0)


def _read_timeouts(url: str) -> dict[str, int]:
    text = httpx.get(url + "/metrics").text
    return {line.split('stage="')[1].split('"')[0]: int(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("chorus_gateway_read_timeouts_total{")}


def test_the_servers_own_408s_are_counted_in_metrics(url: str) -> None:
    before = _read_timeouts(url)
    assert set(before) == {"head", "body"}
    with _connect(url) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-le")
        assert _until_closed(s).startswith(b"HTTP/1.1 408 ")
    with _connect(url) as s:  # nothing sent: closed silently, not a 408, not counted
        assert _until_closed(s) == b""
    after = _read_timeouts(url)
    assert after["head"] == before["head"] + 1 and after["body"] == before["body"]
