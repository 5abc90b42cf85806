"""Every subcommand and every option says what it does in --help."""

import argparse

from chorus.cli.main import build_parser


def _missing(parser: argparse.ArgumentParser, prog: str) -> list[str]:
    out: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helped = {a.dest for a in action._choices_actions if a.help}
            for name, sub in action.choices.items():
                if name not in helped:
                    out.append(f"{prog} {name}: no help in the command list")
                if not sub.description:
                    out.append(f"{prog} {name}: no description in its --help")
                out += _missing(sub, f"{prog} {name}")
        elif not isinstance(action, argparse._HelpAction | argparse._VersionAction) \
                and not action.help:
            out.append(f"{prog} {'/'.join(action.option_strings) or action.dest}: no help")
    return out


def test_every_command_and_option_has_help() -> None:
    assert _missing(build_parser(), "chorus") == []


def test_the_walk_finds_a_missing_help() -> None:
    p = argparse.ArgumentParser(prog="x")
    p.add_argument("--quiet")
    sub = p.add_subparsers()
    sub.add_parser("thing").add_argument("file")
    assert _missing(p, "x") == ["x --quiet: no help", "x thing: no help in the command list",
                                "x thing: no description in its --help",
                                "x thing file: no help"]


def test_a_command_without_a_description_opens_its_help_with_its_list_line() -> None:
    text = build_parser()._subparsers._group_actions[0].choices["feedback"].format_help()
    assert "\n\nUpdate a weighted ensemble's weights and a learned router's" in text
    ev = build_parser()._subparsers._group_actions[0].choices["router"]
    text = ev._subparsers._group_actions[0].choices["eval"].format_help()
    assert "CPT(50%)" in text and "%%" not in text


def test_serve_help_names_every_api_route() -> None:
    from starlette.routing import Route

    from chorus.config.builder import Config
    from chorus.gateway import Gateway, create_app

    app = create_app(Gateway.from_config(Config.from_text(
        "models:\n  m: {provider: scripted, default: hi}\n", "g.yaml")))
    paths = {r.path for r in app.routes
             if isinstance(r, Route) and r.path.startswith("/v1/") and "{" not in r.path}
    assert len(paths) >= 5
    serve = build_parser()._subparsers._group_actions[0].choices["serve"]
    text = " ".join(serve.format_help().split())
    assert [p for p in sorted(paths) if p not in text] == []
