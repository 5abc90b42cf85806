"""``chorus serve``: the OpenAI-compatible gateway over every system of a config."""

from __future__ import annotations

import argparse
import errno
import ipaddress
import os
import sys

from chorus.core.errors import ChorusError

__all__ = ["add_parser", "cmd_serve"]


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "serve", help="serve every system over an OpenAI-compatible HTTP API",
        description="Serve every system and model of a config at /v1/chat/completions, "
                    "/v1/completions, /v1/responses, /v1/embeddings and /v1/models "
                    "(OpenAI's wire format).")
    p.add_argument("-c", "--config", metavar="FILE",
                   help="YAML config file (default: $CHORUS_CONFIG, else the embedded default)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, metavar="N", help="port (default 8000)")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="worker processes (share state through a Redis store)")
    p.add_argument("--hash-key", nargs="?", const="-", metavar="KEY",
                   help="print the sha256 of an API key for gateway.keys[].key_sha256 "
                        "and exit (reads the key from stdin when KEY is absent or '-')")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_bindable(host: str, port: int) -> None:
    """Fail before announcing when the address is taken (bound as uvicorn binds it)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ChorusError(f"cannot serve on {host}: {exc.strerror}") from None
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
        except OSError as exc:
            why = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound: {exc}"
            raise ChorusError(f"{host}:{port} {why}: choose another --port or stop what "
                              f"listens there") from None


def cmd_serve(args: argparse.Namespace) -> int:
    from chorus.gateway.auth import hash_key

    if args.hash_key is not None:
        key = sys.stdin.readline().strip() if args.hash_key == "-" else args.hash_key
        if not key:
            raise ChorusError("no key to hash: give it as an argument or on stdin")
        print(hash_key(key))
        return 0
    if args.workers < 1:
        raise ChorusError("--workers must be at least 1")
    if not 0 <= args.port <= 65535:
        raise ChorusError("--port must be between 0 and 65535")
    from chorus.config.builder import Config
    from chorus.gateway import server
    from chorus.gateway.app import create_app
    from chorus.gateway.service import Gateway

    path = args.config or os.environ.get("CHORUS_CONFIG") or None
    # Built (and checked) here, so a bad config is one line and exit 1 before binding.
    gateway = Gateway.from_config(Config.load(path))
    app = create_app(gateway) if args.workers == 1 else None
    _check_bindable(args.host, args.port)
    n = len(gateway.models)
    print(f"chorus: serving {n} systems and models on http://{args.host}:{args.port}/v1 "
          f"({args.workers} worker{'s' if args.workers > 1 else ''})", file=sys.stderr)
    if gateway.keys.open:
        where = "" if _loopback(args.host) else f" and listening on {args.host}"
        print(f"chorus: warning: no gateway.keys configured: anyone can call this gateway"
              f"{where}", file=sys.stderr)
    sys.stderr.flush()
    server.run(app, path=path, host=args.host, port=args.port, settings=gateway.settings,
               workers=args.workers)
    return 0
