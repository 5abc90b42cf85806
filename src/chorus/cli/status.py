"""``chorus status``: the live state of every breaker, budget and rate limit in a config,
read from their stores, one line each (a window budget adds one line per key)."""

from __future__ import annotations

import argparse
from typing import Any

from chorus.cli.main import dump_json, load_config, run_async
from chorus.config.builder import Config
from chorus.core.errors import StoreUnavailable
from chorus.core.model import Model
from chorus.policies.breaker import Breaker
from chorus.policies.budget import Budget
from chorus.policies.ratelimit import RateLimit
from chorus.stores import Store

__all__ = ["cmd_status", "collect", "format_line", "wrappers"]

Wrapper = Budget | Breaker | RateLimit


def wrappers(cfg: Config) -> list[Wrapper]:
    """Every budget, breaker and rate-limit wrapper in the config, each once, in order."""
    found: dict[int, Wrapper] = {}
    seen: set[int] = set()

    def walk(model: Model) -> None:
        if id(model) in seen:
            return
        seen.add(id(model))
        if isinstance(model, Budget | Breaker | RateLimit):
            found[id(model)] = model
        for child in model.children():
            walk(child)

    for name in cfg.model_names + cfg.system_names:
        walk(cfg.get(name))
    return list(found.values())


async def collect(cfg: Config) -> list[dict[str, Any]]:
    """Each wrapper's status; a store that cannot be read gives an ``error`` entry."""
    out: list[dict[str, Any]] = []
    stores: dict[int, Store] = {}
    try:
        for w in wrappers(cfg):
            stores[id(w.gate.store)] = w.gate.store
            try:
                info = await w.status()
            except StoreUnavailable as exc:
                info = {"kind": w.kind, "name": w.name, "error": str(exc)}
            info["store"] = w.gate.store.name
            out.append(info)
    finally:
        for store in stores.values():
            await store.aclose()
    return out


def _money(v: float | None) -> str:
    return "-" if v is None else f"${v:.6f}".rstrip("0").rstrip(".")


def _tokens(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def _spent(spent: dict[str, float], limit: dict[str, Any]) -> str:
    parts = []
    if limit.get("usd") is not None:
        parts.append(f"{_money(spent.get('usd', 0.0))} of {_money(limit['usd'])}")
    if limit.get("tokens") is not None:
        parts.append(f"{_tokens(spent.get('tokens', 0.0))} of {_tokens(limit['tokens'])} tokens")
    return ", ".join(parts)


def _limit(limit: dict[str, Any]) -> str:
    parts = []
    if limit.get("usd") is not None:
        parts.append(_money(limit["usd"]))
    if limit.get("tokens") is not None:
        parts.append(f"{_tokens(limit['tokens'])} tokens")
    return " / ".join(parts)


def format_line(info: dict[str, Any]) -> list[str]:
    """The lines ``chorus status`` prints for one wrapper."""
    head = f"{info['kind']:<9} {info['name']}"
    if "error" in info:
        return [f"{head}: unavailable ({info['error']})"]
    if info["kind"] == "breaker":
        line = (f"{head}: model {info['model']}, {info['state']}, "
                f"{info['failures']}/{info['threshold']} failures in {info['window_s']:g}s")
        if info["state"] != "closed":
            wait = info["retry_in_s"]
            line += f", probe in {wait:.1f}s" if wait > 0 else ", probe allowed now"
        return [line]
    if info["kind"] == "ratelimit":
        limits = [f"{info[k]:g} {unit}/min" for k, unit in
                  (("requests_per_minute", "requests"), ("tokens_per_minute", "tokens"))
                  if info[k] is not None]
        return [f"{head}: model {info['model']}, {', '.join(limits)} per {info['per']}, "
                f"on limit {info['on_limit']}, {info['buckets']} active bucket(s)"]
    parts = []
    if _limit(info["request"]):
        parts.append(f"per request {_limit(info['request'])}")
    lines = []
    win = info.get("window")
    if win is not None:
        spent: dict[str, dict[str, float]] = info.get("spent", {})
        if win["per"] == "global":
            parts.append(f"window {win['seconds']:g}s: {_spent(spent.get('*', {}), win['limit'])}")
        else:
            parts.append(f"window {win['seconds']:g}s per {win['per']}: limit "
                         f"{_limit(win['limit'])}, {len(spent)} active")
            lines = [f"  {win['per']} {who!r}: {_spent(s, win['limit'])}"
                     for who, s in sorted(spent.items())]
    return [f"{head}: {'; '.join(parts)}", *lines]


def cmd_status(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    infos: list[dict[str, Any]] = run_async(collect(cfg))
    failed = any("error" in i for i in infos)
    if args.json:
        print(dump_json(infos))
        return 1 if failed else 0
    if not infos:
        print(f"no budget, breaker or rate-limit wrappers in {cfg.file}")
        return 0
    for info in infos:
        for line in format_line(info):
            print(line)
    return 1 if failed else 0

