"""The ``chorus`` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from chorus import __version__
from chorus.cli._args import amount
from chorus.core.errors import ChorusError
from chorus.core.types import MAX_TEMPERATURE

if TYPE_CHECKING:
    from chorus.config.builder import Config

__all__ = ["main", "build_parser"]

EXIT_ERROR = 1
EXIT_USAGE = 2


class _Commands(argparse._SubParsersAction):  # type: ignore[type-arg]
    """Subcommands whose own --help opens with the line the command list shows."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        line = kwargs.get("help")
        if line and not kwargs.get("description"):
            kwargs["description"] = line[0].upper() + line[1:].replace("%%", "%") + "."
        parser: argparse.ArgumentParser = super().add_parser(name, **kwargs)
        return parser


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register("action", "parsers", _Commands)
        self._words: list[str] = []

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None,
                         ) -> tuple[argparse.Namespace, list[str]]:
        self._words = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def _command(self) -> argparse.ArgumentParser:
        """The innermost subcommand the words name (``chorus router eval`` ->
        ``router eval``'s parser): where an error argparse reports at the top level, such
        as an unrecognised option, belongs."""
        parser: argparse.ArgumentParser = self
        for word in self._words:
            subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
            if subs and word in subs[0].choices:
                parser = subs[0].choices[word]
        return parser

    def error(self, message: str) -> NoReturn:
        command = self._command()
        line = f"{message} (see '{command.prog} --help')"
        flag = command._option_string_actions.get("--json")
        if isinstance(flag, argparse._StoreTrueAction) and "--json" in self._words:
            # Whoever asked for JSON reads stdout as JSON, usage errors included.
            print(dump_json({"error": {"type": "UsageError", "message": line}}))
            self.exit(EXIT_USAGE)
        self.exit(EXIT_USAGE, f"chorus: {line}\n")


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c", "--config", metavar="FILE",
        help="YAML config file (default: $CHORUS_CONFIG, else the embedded default config)",
    )


def _temperature(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= MAX_TEMPERATURE:
        raise argparse.ArgumentTypeError(
            f"must be between 0 and {MAX_TEMPERATURE:g}, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="chorus",
        description="Multi-model LLM systems: run, inspect and serve them.",
        epilog="Run 'chorus COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"chorus {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback when something fails")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = sub.add_parser("run", help="answer one prompt with a system or model",
                         description="Answer one prompt with a system (or a single model).")
    _config_arg(run)
    run.add_argument("-s", "--system", help="system or model name (default: the config's default)")
    run.add_argument("--trace", action="store_true",
                     help="show every model call with tokens, cost and latency")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    run.add_argument("--stream", action="store_true", help="print the answer as it is generated")
    run.add_argument("--system-prompt", metavar="TEXT", help="a system message to send first")
    run.add_argument("--max-tokens", type=int, metavar="N", help="cap on output tokens")
    run.add_argument("--temperature", type=_temperature, metavar="T",
                     help=f"sampling temperature, 0 to {MAX_TEMPERATURE:g} "
                          "(default: each model's own)")
    run.add_argument("--seed", type=int, metavar="N",
                     help="sampling seed, for models that take one")
    run.add_argument("--timeout", type=amount(0, above=True), metavar="SECONDS",
                     help="deadline for the whole request")
    run.add_argument("prompt", nargs="?", help="the prompt (read from stdin when absent or '-')")

    models = sub.add_parser("models", help="list models with provider, price and usability")
    _config_arg(models)
    models.add_argument("--check", action="store_true", help="also probe each endpoint")
    models.add_argument("--json", action="store_true", help="print JSON")

    systems = sub.add_parser("systems", help="list the systems of a config")
    _config_arg(systems)

    config = sub.add_parser("config", help="check or show a config file")
    csub = config.add_subparsers(dest="config_command", metavar="ACTION", parser_class=_Parser)
    check = csub.add_parser("check", help="validate a config file and build every system")
    show = csub.add_parser("show", help="print a config file (the default one when none)")
    for p in (check, show):
        _config_arg(p)
        p.add_argument("file", metavar="FILE", nargs="?",
                       help="the config file, as a word instead of -c FILE")

    from chorus.cli.doctor import add_parser as _add_doctor

    _add_doctor(sub, _config_arg)

    status = sub.add_parser("status", help="breaker states and budget spending, from the stores")
    _config_arg(status)
    status.add_argument("--json", action="store_true", help="print JSON")

    from chorus.cli.serve import add_parser as _add_serve

    _add_serve(sub)

    # -- eval: bench, outcomes, feedback, router --
    from chorus.cli.bench import add_parsers as _add_bench
    from chorus.cli.router_cmd import add_parser as _add_router
    from chorus.cli.tune_cmd import add_parser as _add_tune

    _add_bench(sub, _config_arg)
    from chorus.cli.batch import add_parser as _add_batch

    _add_batch(sub, _config_arg)
    _add_router(sub)
    _add_tune(sub)
    return parser


def _cmd_serve(args: argparse.Namespace) -> int:
    from chorus.cli.serve import cmd_serve

    return cmd_serve(args)


def _cmd_eval(args: argparse.Namespace) -> int:
    from chorus.cli import bench, router_cmd, tune_cmd

    handler = {"bench": bench.cmd_bench, "outcomes": bench.cmd_outcomes,
               "feedback": bench.cmd_feedback, "router": router_cmd.cmd_router,
               "tune": tune_cmd.cmd_tune}
    return handler[args.command](args)


def _cmd_batch(args: argparse.Namespace) -> int:
    from chorus.cli.batch import cmd_batch

    return cmd_batch(args)


def _cmd_status(args: argparse.Namespace) -> int:
    from chorus.cli.status import cmd_status

    return cmd_status(args)


def _cmd_doctor(args: argparse.Namespace) -> int:
    from chorus.cli.doctor import cmd_doctor

    return cmd_doctor(args)


def load_config(path: str | None) -> Config:
    from chorus.config.builder import Config

    return Config.load(path or os.environ.get("CHORUS_CONFIG") or None)


# Commands that run native code (llama.cpp, torch) for as long as they live.
_SUPERVISED = ("run", "serve")


def main(argv: Sequence[str] | None = None) -> int:
    """The program. Called with ``argv=None`` (from the shell), ``run`` and ``serve`` run
    in a child process so that a native crash still ends with a line saying what to do
    (see ``chorus.cli._crash``); with an explicit ``argv`` everything runs here."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if argv is None and args.command in _SUPERVISED:
        from chorus.cli import _crash

        if os.environ.get(_crash.CHILD_ENV):
            import faulthandler

            faulthandler.enable()
        elif getattr(args, "hash_key", None) is None:
            return _crash.supervise([sys.executable, "-m", "chorus.cli.main", *sys.argv[1:]],
                                    during=f"chorus {args.command}")
    from chorus.cli import commands

    handler = {
        "run": commands.cmd_run,
        "models": commands.cmd_models,
        "systems": commands.cmd_systems,
        "config": commands.cmd_config,
        "status": _cmd_status,
        "doctor": _cmd_doctor,
        "bench": _cmd_eval,
        "outcomes": _cmd_eval,
        "feedback": _cmd_eval,
        "router": _cmd_eval,
        "tune": _cmd_eval,
        "serve": _cmd_serve,
        "batch": _cmd_batch,
    }[args.command]
    try:
        return handler(args)
    except ChorusError as exc:
        return _fail(args, exc, str(exc))
    except KeyboardInterrupt:
        print("chorus: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, not a traceback
        return _fail(args, exc, f"internal error: {type(exc).__name__}: {exc} "
                     "(please report it; --debug shows the traceback)")


def _fail(args: Any, exc: BaseException, line: str) -> int:
    # One line, whatever the message: a parser's or a library's may span several.
    line = " ".join(line.split())
    if getattr(args, "debug", False):
        traceback.print_exception(exc)
    if getattr(args, "json", None) is True:
        # Whoever asked for JSON reads stdout as JSON, failures included.
        print(dump_json({"error": {"type": type(exc).__name__, "message": line}}))
        return EXIT_ERROR
    print(f"chorus: error: {line}", file=sys.stderr)
    return EXIT_ERROR


def run_async(coro: Any) -> Any:
    return asyncio.run(coro)


def dump_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False, default=str)


if __name__ == "__main__":
    sys.exit(main())
