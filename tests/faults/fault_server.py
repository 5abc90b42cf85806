"""An OpenAI-compatible server on 127.0.0.1 whose model name picks a fault.

It speaks raw HTTP/1.1 on an asyncio socket server (in a thread of its own), so it can
fail the way real upstreams do: reset a connection before the headers, stall after them,
cut a stream, send a broken chunk. The fault suite (tests/faults) and the failover
benchmark (benchmarks/failover_faults.py) both drive it.

Every model that answers says ``ANSWER`` (streamed word by word when asked). Given a
partial answer to continue (a last assistant message, or one followed by an instruction),
it answers only the rest, as a model that continues well would.

Model names (the ``model`` field of the request):

    ok            answers
    429-ra        429 with Retry-After (RETRY_AFTER_S) on its first call, then answers
    429           429 without Retry-After on its first call, then answers
    500-once      500 on its first call, then answers
    503           always 503
    reset         resets the connection before any header
    silent        reads the request and never answers
    slow-first    sends the headers, then its first token after SLOW_FIRST_S
    cut           streams "Paris is the " and closes the connection
    stall         streams "Paris is the " and then goes silent
    malformed     streams "Paris is the " and then a chunk that is not JSON
    no-done       streams the whole answer with finish_reason but never [DONE]
    ctx           400 context_length_exceeded
    filter        400 content_filter
    flaky         503 while ``down_until`` (a time.monotonic()) is ahead, then answers
    no-prefill    answers, but 400 when the last message is an assistant prefill
    cached        answers, reporting half the prompt as read from a prompt cache
    strict-tools  answers, but 400 for a tool history OpenAI's API would refuse
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

__all__ = ["ANSWER", "FaultServer", "Seen"]

ANSWER = "Paris is the capital of France."
CUT_AFTER = 3  # words sent before a cut, a stall or a broken chunk
RETRY_AFTER_S = 0.3
SLOW_FIRST_S = 2.5
HOLD_S = 60.0  # how long "silent" and "stall" hold a connection (tests time out first)


@dataclass(frozen=True)
class Seen:
    """One request the server received."""

    model: str
    stream: bool
    messages: list[dict[str, Any]]


def _sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def _chunk(model: str, text: str | None, finish: str | None = None) -> bytes:
    delta = {"content": text} if text else {}
    return _sse({"id": "f", "object": "chat.completion.chunk", "created": 0, "model": model,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def _words(messages: list[dict[str, Any]]) -> int:
    return sum(len(str(m.get("content", "")).split()) for m in messages)


def _refused_tool_history(messages: list[dict[str, Any]]) -> str:
    """Why OpenAI's API would refuse this tool history, or "": a call id over 40
    characters or empty, a tool message that answers no call of the assistant turn
    before it."""
    calls: set[str] = set()
    for i, m in enumerate(messages):
        if m.get("role") == "assistant" and m.get("tool_calls"):
            calls = set()
            for c in m["tool_calls"]:
                cid = str(c.get("id") or "")
                if not 0 < len(cid) <= 40:
                    return (f"Invalid 'messages[{i}].tool_calls.id': string too long or "
                            "empty. Expected a string with maximum length 40")
                calls.add(cid)
        elif m.get("role") == "tool" and m.get("tool_call_id") not in calls:
            return (f"Invalid parameter: messages[{i}] with role 'tool' must be a response "
                    "to a preceeding message with 'tool_calls'")
    return ""


def pieces(text: str) -> list[str]:
    """``text`` in word-sized pieces that join back into it."""
    return re.findall(r"\s*\S+\s*", text)


def reply_to(messages: list[dict[str, Any]]) -> str:
    """ANSWER, or only its rest when the messages carry a partial answer to continue."""
    for m in reversed(messages):
        if m.get("role") == "assistant":
            done = str(m.get("content", ""))
            if ANSWER.startswith(done):
                return ANSWER[len(done):]
            break
    return ANSWER


class FaultServer:
    """Start with ``with FaultServer() as fs:``; ``fs.base_url`` ends in /v1."""

    def __init__(self) -> None:
        self.port = 0
        self.seen: list[Seen] = []
        self.calls: Counter[str] = Counter()
        self.down_until = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def count(self, model: str) -> int:
        return self.calls[model]

    # -- lifecycle

    def __enter__(self) -> FaultServer:
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fault server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()
            for w in list(self._writers):
                w.transport.abort()
            server.close()

    # -- one connection

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False when the connection is done."""
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        body = json.loads(await reader.readexactly(length)) if length else {}
        if head.startswith(b"GET"):
            await self._json(writer, 200, {"object": "list", "data": [{"id": "ok"}]})
            return True
        model, stream = str(body.get("model", "")), bool(body.get("stream"))
        messages = list(body.get("messages", []))
        self.seen.append(Seen(model, stream, messages))
        self.calls[model] += 1
        first = self.calls[model] == 1
        if model == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if model == "silent":
            await asyncio.sleep(HOLD_S)
            return False
        if model == "503" or (model == "flaky" and time.monotonic() < self.down_until):
            await self._error(writer, 503, "overloaded", "server_error")
            return True
        if model == "500-once" and first:
            await self._error(writer, 500, "internal error", "server_error")
            return True
        if model in ("429", "429-ra") and first:
            extra = {"retry-after": f"{RETRY_AFTER_S:g}"} if model == "429-ra" else {}
            await self._error(writer, 429, "slow down", "rate_limit_exceeded", extra)
            return True
        if model == "ctx":
            await self._error(writer, 400, "This model's maximum context length is 64 tokens",
                              "context_length_exceeded")
            return True
        if model == "filter":
            await self._error(writer, 400, "The response was filtered by the content policy",
                              "content_filter")
            return True
        if model == "no-prefill" and messages and messages[-1].get("role") == "assistant":
            await self._error(writer, 400, "This model does not support assistant message "
                              "prefill", "invalid_request_error")
            return True
        if model == "strict-tools" and (why := _refused_tool_history(messages)):
            await self._error(writer, 400, why, "invalid_request_error")
            return True
        if model in ("cut", "stall", "malformed", "slow-first", "no-done") and stream:
            await self._broken(writer, model)
            return False
        text = reply_to(messages)
        usage: dict[str, Any] = {"prompt_tokens": _words(messages),
                                 "completion_tokens": len(text.split()),
                                 "total_tokens": _words(messages) + len(text.split())}
        if model == "cached":  # half the prompt read from the provider's prompt cache
            usage["prompt_tokens_details"] = {"cached_tokens": _words(messages) // 2}
        if not stream:
            await self._json(writer, 200, {
                "id": "f", "object": "chat.completion", "created": 0, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop"}], "usage": usage})
            return True
        await self._start_stream(writer)
        for piece in pieces(text):
            writer.write(_chunk(model, piece))
            await writer.drain()
        writer.write(_chunk(model, None, "stop"))
        writer.write(_sse({"id": "f", "object": "chat.completion.chunk", "created": 0,
                           "model": model, "choices": [], "usage": usage}))
        writer.write(b"data: [DONE]\n\n")
        await writer.drain()
        return False

    async def _broken(self, writer: asyncio.StreamWriter, model: str) -> None:
        await self._start_stream(writer)
        if model == "slow-first":
            await asyncio.sleep(SLOW_FIRST_S)
        sent = pieces(ANSWER)
        for piece in sent if model in ("slow-first", "no-done") else sent[:CUT_AFTER]:
            writer.write(_chunk(model, piece))
            await writer.drain()
            await asyncio.sleep(0.01)
        if model == "no-done":
            writer.write(_chunk(model, None, "stop"))
        elif model == "stall":
            await asyncio.sleep(HOLD_S)
        elif model == "malformed":
            writer.write(b'data: {"choices": [{"delta": {"content": "cap\n\n')
        elif model == "slow-first":
            writer.write(_chunk(model, None, "stop") + b"data: [DONE]\n\n")
        await writer.drain()

    # -- responses

    @staticmethod
    async def _start_stream(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                     b"connection: close\r\n\r\n")
        await writer.drain()

    @staticmethod
    async def _json(writer: asyncio.StreamWriter, status: int, obj: Any,
                    headers: dict[str, str] | None = None) -> None:
        body = json.dumps(obj).encode()
        reason = {200: "OK", 400: "Bad Request", 429: "Too Many Requests",
                  500: "Internal Server Error", 503: "Service Unavailable"}[status]
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        writer.write(f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
                     f"content-length: {len(body)}\r\n{extra}\r\n".encode() + body)
        await writer.drain()

    async def _error(self, writer: asyncio.StreamWriter, status: int, message: str, code: str,
                     headers: dict[str, str] | None = None) -> None:
        await self._json(writer, status, {"error": {"message": message, "type": code,
                                                    "code": code}}, headers)
