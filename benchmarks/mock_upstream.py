"""A tiny, fast OpenAI-compatible upstream on 127.0.0.1 for gateway and batch benchmarks
(and the batch tests' Ray cluster).

Raw asyncio (no framework): keep-alive HTTP/1.1, any POST answers a fixed chat
completion, any GET a one-model list. ``python benchmarks/mock_upstream.py --port N``;
``--delay-ms`` holds each answer that long (a model's latency, without using a CPU),
``--echo`` answers "echo: " + the last message's text, ``--port 0`` picks a free port and
prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import json

ANSWER = json.dumps({
    "id": "chatcmpl-mock", "object": "chat.completion", "created": 0, "model": "mock",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "pong"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
}).encode()
MODELS = json.dumps({"object": "list", "data": [{"id": "mock", "object": "model"}]}).encode()


def _response(body: bytes) -> bytes:
    return (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)


POST_RESPONSE, GET_RESPONSE = _response(ANSWER), _response(MODELS)


def _echo(body: bytes) -> bytes:
    last = json.loads(body)["messages"][-1]["content"]
    return _response(ANSWER.replace(b'"content": "pong"',
                                    b'"content": ' + json.dumps("echo: " + last).encode()))


class Upstream(asyncio.Protocol):
    delay_s = 0.0
    echo = False

    def __init__(self) -> None:
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].lower()
            length = 0
            i = head.find(b"content-length:")
            if i >= 0:
                length = int(head[i + 15:head.find(b"\r\n", i) if head.find(b"\r\n", i) > 0
                                  else len(head)])
            total = end + 4 + length
            if len(self.buf) < total:
                return
            body, self.buf = self.buf[end + 4:total], self.buf[total:]
            assert self.transport is not None
            post = head.startswith(b"post")
            reply = (_echo(body) if self.echo else POST_RESPONSE) if post else GET_RESPONSE
            if post and self.delay_s > 0:
                asyncio.get_running_loop().call_later(self.delay_s, self._send, reply)
            else:
                self.transport.write(reply)

    def _send(self, reply: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(reply)


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Upstream, "127.0.0.1", port, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--echo", action="store_true")
    args = parser.parse_args()
    Upstream.delay_s, Upstream.echo = args.delay_ms / 1000, args.echo
    asyncio.run(serve(args.port))
