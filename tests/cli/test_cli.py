import json
import subprocess
import sys
from pathlib import Path

import pytest

from chorus.cli.main import main
from chorus.core.errors import ChorusError

CONFIG = """\
models:
  fast:
    provider: scripted
    rules: {capital: Paris}
    default: "I do not know"
    price: {input: 1.0, output: 2.0}
  broken:
    provider: scripted
    fail_with: server_error
    fail_times: -1
systems:
  single: fast
"""


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(CONFIG)
    return p


def test_run_prints_answer(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "-c", str(cfg), "What is the capital of France?"]) == 0
    assert capsys.readouterr().out.strip() == "Paris"


def test_run_json_trace_fields(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "-c", str(cfg), "--json", "--trace", "capital?"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["text"] == "Paris" and d["model"] == "fast"
    assert d["usage"]["output_tokens"] == 1 and d["cost_usd"] > 0
    span = d["trace"]
    for key in ("kind", "name", "model", "usage", "cost_usd", "latency_s", "attributes",
                "children"):
        assert key in span


def test_run_trace_tree_text(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "-c", str(cfg), "--trace", "capital?"]) == 0
    out = capsys.readouterr().out
    assert "Paris" in out and "tokens" in out and "$0.0000" in out


def test_run_stream(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "-c", str(cfg), "--stream", "-s", "fast", "hello"]) == 0
    assert capsys.readouterr().out == "I do not know\n"


@pytest.mark.parametrize("dash", [[], ["-"]])
def test_prompt_from_stdin(cfg: Path, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str], dash: list[str]) -> None:
    import io

    # No prompt, or "-" as cat and most tools read it: not the one-character prompt "-".
    monkeypatch.setattr(sys, "stdin", io.StringIO("capital of France\n"))
    assert main(["run", "-c", str(cfg), *dash]) == 0
    assert capsys.readouterr().out.strip() == "Paris"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["-s", "nope"], "unknown model or system 'nope'"),
        (["-s", "broken"], "server_error"),
        (["--max-tokens", "0"], "--max-tokens"),
    ],
)
def test_errors_are_one_line(cfg: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                             needle: str) -> None:
    assert main(["run", "-c", str(cfg), *args, "hi"]) == 1
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("exc", [RuntimeError("first line\n  ^ second"),
                                 ChorusError("first line\n  ^ second")])
def test_a_multi_line_message_is_printed_on_one_line(
        cfg: Path, exc: Exception, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    def fail(*_: object, **__: object) -> None:
        raise exc

    monkeypatch.setattr("chorus.cli.commands.load_config", fail)
    assert main(["run", "-c", str(cfg), "hi"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "first line ^ second" in err


def test_debug_shows_traceback(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--debug", "run", "-c", str(cfg), "-s", "nope", "hi"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_config_check(cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(cfg)]) == 0
    assert "ok:" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  a:\n    provider: scripted\n    modle: x\n")
    assert main(["config", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:4: models.a.modle: unknown key 'modle'" in err


def test_models_lists_price_and_usability(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "-c", str(cfg), "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["fast"]["price_per_mtok"] == {"input": 1.0, "output": 2.0}
    assert rows["fast"]["usable"] is True


def test_usage_error_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "--no-such-flag"])
    assert info.value.code == 2


def test_console_script_has_no_traceback(cfg: Path) -> None:
    exe = Path(sys.executable).with_name("chorus")
    proc = subprocess.run([str(exe), "run", "-c", str(cfg) + ".missing", "hi"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "not found" in proc.stderr


def test_config_check_counts_in_the_singular_too(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "one.yaml"
    path.write_text("models:\n  m: {provider: scripted, default: hi}\n"
                    "systems:\n  s: m\n")
    assert main(["config", "check", str(path)]) == 0
    assert capsys.readouterr().out == f"ok: {path}: 1 model, 1 system (m, s)\n"


def test_config_check_of_a_tuned_config_stays_one_readable_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "many.yaml"
    path.write_text("models:\n  m: {provider: scripted, default: hi}\nsystems:\n"
                    + "".join(f"  s{i:02d}: m\n" for i in range(30)))
    assert main(["config", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"ok: {path}: 1 model, 30 systems (m, s00, s01, ") and "s10," in out
    assert "s11" not in out and out.count("\n") == 1
    assert out.endswith(", and 19 more: `chorus models -c FILE` and `chorus systems -c FILE` "
                        "list them)\n")


def test_config_check_takes_dash_c_like_every_command(cfg: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", "-c", str(cfg)]) == 0
    assert capsys.readouterr().out.startswith(f"ok: {cfg}: 2 models")
    assert main(["config", "show", "-c", str(cfg)]) == 0
    assert "capital: Paris" in capsys.readouterr().out
    other = tmp_path / "other.yaml"
    other.write_text(CONFIG)
    assert main(["config", "check", "-c", str(cfg), str(other)]) == 1
    assert "two config files given" in capsys.readouterr().err


def test_readme_headline_config_error_is_what_happens(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    import re

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    example = re.search(r"`chorus\.yaml:5: (models\.small\.modle: [^`]*)`", readme)
    assert example is not None
    block = readme[readme.index("# chorus.yaml\n"):]
    block = block[:block.index("```")].replace("    model: smollm2-135m", "    modle: smollm2-135m")
    path = tmp_path / "chorus.yaml"
    path.write_text(block)
    assert main(["config", "check", "-c", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"chorus: error: {path}:5: {' '.join(example.group(1).split())}"


def test_run_json_prints_errors_as_json(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "-c", str(cfg), "--json", "-s", "nope", "hi"]) == 1
    captured = capsys.readouterr()
    error = json.loads(captured.out)["error"]
    assert error["type"] == "UnknownName" and "unknown model or system 'nope'" in error["message"]
    assert captured.err == ""


@pytest.mark.parametrize("value", ["9", "-0.1", "2.01", "hot"])
def test_temperature_out_of_range_is_refused(cfg: Path, value: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "-c", str(cfg), "--temperature", value, "hi"])
    assert info.value.code == 2
    assert "argument --temperature" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--temperature", "9"], ["--max-tokens", "many"]])
def test_run_json_prints_usage_errors_as_json(cfg: Path, args: list[str],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "-c", str(cfg), "--json", *args, "hi"])
    assert info.value.code == 2
    captured = capsys.readouterr()
    error = json.loads(captured.out)["error"]
    assert error["type"] == "UsageError"
    assert error["message"].startswith(f"argument {args[0]}: ")
    assert error["message"].endswith("(see 'chorus run --help')")
    assert captured.err == ""


def test_an_unknown_option_under_json_is_a_json_error_naming_the_subcommand(
        capsys: pytest.CaptureFixture[str]) -> None:
    # argparse reports unrecognised options from the top-level parser, which has no
    # --json of its own: the subcommand's flag decides.
    with pytest.raises(SystemExit) as info:
        main(["models", "--json", "--bogus"])
    assert info.value.code == 2
    captured = capsys.readouterr()
    error = json.loads(captured.out)["error"]
    assert error == {"type": "UsageError", "message":
                     "unrecognized arguments: --bogus (see 'chorus models --help')"}
    assert captured.err == ""
    with pytest.raises(SystemExit):
        main(["models", "--bogus"])  # no --json: one line on stderr, as before
    captured = capsys.readouterr()
    assert captured.out == "" and "chorus models --help" in captured.err


def test_json_that_names_a_file_keeps_usage_errors_on_stderr(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["router", "eval", "--json", "out.json"])
    captured = capsys.readouterr()
    assert captured.out == "" and "--router" in captured.err


def test_temperature_bound_is_the_gateways() -> None:
    from chorus.core.types import MAX_TEMPERATURE
    from chorus.gateway.chat_request import ChatRequest

    field = ChatRequest.model_fields["temperature"]
    assert any(getattr(m, "le", None) == MAX_TEMPERATURE for m in field.metadata)
    assert main(["run", "--temperature", "2", "-c", "/nonexistent.yaml", "hi"]) == 1


def test_an_unknown_name_in_a_large_config_lists_a_few_and_counts_the_rest(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A config chorus tune writes holds dozens of systems: the error stays one short line.
    systems = "".join(f"  s{i:02d}: fast\n" for i in range(40))
    cfg = tmp_path / "big.yaml"
    cfg.write_text(CONFIG + systems)
    assert main(["run", "-c", str(cfg), "-s", "nope", "hi"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown model or system 'nope'" in err
    assert "s09" in err and "s39" not in err
    assert "and 31 more (`chorus models -c FILE` and `chorus systems -c FILE`" in err
