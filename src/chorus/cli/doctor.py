"""``chorus doctor``: does the local stack work on this machine?

The local checks (llama.cpp's build, each bundled model loading and decoding, the
embedder) run in a child process, so a native crash becomes one line naming the cause
and the fix instead of killing chorus. Redis (when the config names it) and, with
``--endpoints``, API keys and remote endpoints are checked from this process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chorus.cli._crash import crash_hint

__all__ = ["Result", "add_parser", "cmd_doctor", "local_checks", "redis_urls"]

CHILD = [sys.executable, "-m", "chorus.cli._doctor_child"]


@dataclass(frozen=True, slots=True)
class Result:
    check: str
    ok: bool
    detail: str


def add_parser(sub: argparse._SubParsersAction,  # type: ignore[type-arg]
               config_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser(
        "doctor", help="check that the local stack works on this machine",
        description="Check the local stack in a child process: llama.cpp's build (no AMX "
                    "kernels), each bundled model loads and decodes a few tokens, the "
                    "embedder embeds a sentence; then Redis when the config names it. "
                    "Exits 1 when a check fails.")
    config_arg(p)
    p.add_argument("--endpoints", action="store_true",
                   help="also check API keys and probe every remote endpoint of the config")
    p.add_argument("--json", action="store_true", help="print the results as JSON")


def local_checks(cmd: Sequence[str] = CHILD, timeout: float = 600) -> list[Result]:
    """Run the child's checks; a crash or a hang becomes the result of the check that
    was running."""
    proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    results: list[Result] = []
    running: str | None = None
    for line in proc.stdout.splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # a library's own print, not ours
        if event.get("event") == "start":
            running = event["check"]
        elif event.get("event") == "end":
            results.append(Result(event["check"], bool(event["ok"]), str(event["detail"])))
            running = None
    hint = crash_hint(proc.returncode, running or "the check process")
    if hint is not None:
        results.append(Result(running or "local stack", False, hint))
    elif proc.returncode != 0 and all(r.ok for r in results):
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        results.append(Result(running or "local stack", False,
                              f"the check process exited {proc.returncode}: {last}"))
    return results


def redis_urls(data: Any) -> list[str]:
    """Every Redis URL a config names (named stores and inline ones)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            if node.get("kind") == "redis" and isinstance(node.get("url"), str):
                found.append(node["url"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(data)
    return list(dict.fromkeys(found))


def _redis(url: str) -> Result:
    import redis

    from chorus.stores.redis import redact

    shown = redact(url)
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError) as exc:
        return Result(f"redis {shown}", False, f"unreachable: {exc}")
    return Result(f"redis {shown}", True, "answers PING")


def _endpoints(cfg: Any) -> Iterator[Result]:
    from chorus.cli.commands import _probe
    from chorus.providers import Provider

    for name in cfg.model_names:
        model = cfg.get(name)
        if not isinstance(model, Provider) or model.provider == "local":
            continue
        ok, reason = asyncio.run(_probe(model))
        yield Result(f"endpoint {name}", ok, f"{model.provider} {model.model_id}: {reason}")


def _print(results: Sequence[Result]) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False, soft_wrap=True)
    for r in results:
        mark = "[green]ok  [/green]" if r.ok else "[bold red]FAIL[/bold red]"
        console.print(f"{mark} [bold]{escape(r.check)}[/bold]: {escape(r.detail)}")
    bad = sum(not r.ok for r in results)
    if bad:
        console.print(f"[bold red]{bad} of {len(results)} checks failed[/bold red]")
    else:
        console.print(f"[green]all {len(results)} checks passed[/green]")


def cmd_doctor(args: argparse.Namespace) -> int:
    from chorus.cli.main import load_config

    cfg = load_config(args.config)
    results = local_checks()
    results += [_redis(u) for u in redis_urls(cfg.doc.data)]
    if args.endpoints:
        results += list(_endpoints(cfg))
    if args.json:
        print(json.dumps([{"check": r.check, "ok": r.ok, "detail": r.detail} for r in results],
                         indent=2))
    else:
        _print(results)
    return 0 if all(r.ok for r in results) else 1
