"""What each ``chorus`` subcommand does."""

from __future__ import annotations

import argparse
import asyncio
import sys
from contextlib import aclosing
from typing import Any

import yaml
from rich.console import Console

from chorus.cli.main import dump_json, load_config
from chorus.cli.render import summary_line, trace_renderable
from chorus.config.builder import LISTED
from chorus.core.compose import Relay, open_stream
from chorus.core.context import scope
from chorus.core.errors import ChorusError, ConfigError
from chorus.core.model import Leaf, Model, call
from chorus.core.types import Completion, Request, TextDelta
from chorus.eval.report import table
from chorus.providers import Provider

__all__ = ["cmd_run", "cmd_models", "cmd_systems", "cmd_config"]


def _read_prompt(args: argparse.Namespace) -> str:
    prompt: str | None = args.prompt
    if prompt is None or prompt == "-":  # "-": stdin, as for cat
        if sys.stdin is None or sys.stdin.isatty():
            raise ChorusError("no prompt: give one as an argument or pipe it on stdin")
        prompt = sys.stdin.read()
    prompt = prompt.strip()
    if not prompt:
        raise ChorusError("the prompt is empty")
    return prompt


def _request(args: argparse.Namespace, prompt: str) -> Request:
    params: dict[str, Any] = {}
    if args.max_tokens is not None:
        if args.max_tokens < 1:
            raise ChorusError("--max-tokens must be at least 1")
        params["max_tokens"] = args.max_tokens
    if args.temperature is not None:
        params["temperature"] = args.temperature
    if args.seed is not None:
        params["seed"] = args.seed
    return Request.of(prompt, system=args.system_prompt, **params)


async def _answer(model: Model, request: Request, args: argparse.Namespace) -> Completion:
    streaming = args.stream and not args.json
    try:
        with scope(deadline_s=args.timeout):
            if not streaming:
                return await call(model, request)
            started = False
            async with aclosing(open_stream(model, request)) as events:
                relay = Relay(events, model)
                try:
                    async for event in relay:
                        if isinstance(event, TextDelta):
                            started = True
                            sys.stdout.write(event.text)
                            sys.stdout.flush()
                finally:
                    if started:
                        sys.stdout.write("\n")
                        sys.stdout.flush()
            return relay.final
    finally:
        await model.aclose()


def cmd_run(args: argparse.Namespace) -> int:
    prompt = _read_prompt(args)
    cfg = load_config(args.config)
    name = args.system or cfg.default_system
    model = cfg.get(name)
    completion: Completion = asyncio.run(_answer(model, _request(args, prompt), args))
    if args.json:
        out = completion.to_dict(trace=args.trace)
        out["system"] = name
        print(dump_json(out))
        return 0
    if not args.stream:
        print(completion.text)
    if args.trace:
        print()
        if completion.trace is not None:
            sys.stdout.flush()
            Console(highlight=False).print(trace_renderable(completion.trace))
        print(summary_line(completion))
    return 0


def _price(model: Provider) -> str:
    if not model.price_known:
        return "unknown (set price:)"
    return f"${model.price.input:g} / ${model.price.output:g}"


async def _probe(model: Provider) -> tuple[bool, str]:
    probe = getattr(model, "probe", None)
    if probe is None:
        return model.usable()
    try:
        result: tuple[bool, str] = await probe()
        return result
    except ChorusError as exc:
        return False, str(exc)
    finally:
        await model.aclose()


def cmd_models(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    rows: list[dict[str, Any]] = []
    for name in cfg.model_names:
        model = cfg.get(name)
        if not isinstance(model, Provider):
            rows.append({"name": name, "provider": model.kind, "model_id": "", "price": "",
                         "usable": True, "reason": "ok"})
            continue
        ok, reason = asyncio.run(_probe(model)) if args.check else model.usable()
        rows.append({
            "name": name, "provider": model.provider, "model_id": model.model_id,
            "price": _price(model), "price_per_mtok": {"input": model.price.input,
                                                       "output": model.price.output},
            "usable": ok, "reason": reason,
        })
    if args.json:
        print(dump_json(rows))
        return 0
    print(table(
        ["model", "provider", "id", "price in/out per 1M tokens", "usable"],
        [[r["name"], r["provider"], r["model_id"], r["price"],
          "yes" if r["usable"] else f"no: {r['reason']}"] for r in rows],
    ))
    return 0


def cmd_systems(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    rows = []
    for name in cfg.system_names:
        model = cfg.get(name)
        mark = " (default)" if name == cfg.default_system else ""
        rows.append([name + mark, "single model" if isinstance(model, Leaf) else model.kind,
                     getattr(model, "description", "") or ""])
    print(table(["system", "kind", "description"], rows))
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    if args.config_command not in ("check", "show"):
        raise ConfigError("say what to do: 'chorus config check [-c FILE]' or "
                          "'chorus config show [-c FILE]'")
    if args.file and args.config and args.file != args.config:
        raise ChorusError(f"two config files given ({args.config} and {args.file}): give one")
    cfg = load_config(args.config or args.file)
    if args.config_command == "check":
        names = cfg.check()
        if not names:
            raise ConfigError("the config defines no models or systems", file=cfg.file)
        counts = [f"{n} {word}{'' if n == 1 else 's'}" for n, word in
                  ((len(cfg.model_names), "model"), (len(cfg.system_names), "system"))]
        listed = ", ".join(names[:LISTED])
        if len(names) > LISTED:  # a tuned config holds dozens: one line stays readable
            listed += (f", and {len(names) - LISTED} more: `chorus models -c FILE` and "
                       "`chorus systems -c FILE` list them")
        print(f"ok: {cfg.file}: {', '.join(counts)} ({listed})")
        return 0
    print(yaml.safe_dump(cfg.doc.data, sort_keys=False, allow_unicode=True), end="")
    return 0
