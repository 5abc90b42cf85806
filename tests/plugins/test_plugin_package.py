"""A plugin package (tests/plugin_pkg) adds a provider, a pattern, a router classifier, a
guardrail check and a store through its ``chorus.plugins`` entry point alone.

The package is put on the path of a fresh Python process with its entry point metadata
(a ``.dist-info`` folder made from its pyproject.toml, what ``pip install`` writes), so
the registry finds it the way it finds any installed plugin, and this process's
registry stays as it was.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "plugin_pkg"

CONFIG = """\
stores:
  counted: {kind: counting}
models:
  rev: {provider: reverse}
  hello: {provider: scripted, default: "hello there, how are you today"}
systems:
  longest: {kind: longest, models: [rev, hello]}
  routed:
    kind: router
    classifier: {type: length, words: 3}
    routes: {short: rev, long: hello}
    default: long
  guarded: {kind: guardrails, inner: rev, input: [{type: no_digits}]}
  cached: {kind: cache, inner: rev, store: counted}
"""

SCRIPT = """\
import json, sys
from chorus import Request, run_sync
from chorus.config import Config
from chorus.core.errors import GuardrailViolation
from chorus.core.registry import registry
from chorus.eval.bench import system_kind

cfg = Config.from_text(sys.argv[1], "plugins.yaml")
ask = lambda name, text: run_sync(cfg.get(name).complete(Request.of(text)))
out = {"longest": ask("longest", "abc").text,
       "short": ask("routed", "one two").model, "long": ask("routed", "a b c d e").model,
       "family": system_kind(cfg.get("longest"))}
try:
    ask("guarded", "call 555")
except GuardrailViolation as exc:
    out["blocked"] = [exc.check, exc.span]
ask("guarded", "no numbers")
cached = cfg.get("cached")
first, again = ask("cached", "same"), ask("cached", "same")
out["cache"] = [first.text, again.trace.attributes["hit"], cached.store.writes]
out["registered"] = {role: sorted(set(registry.names(role)) & {"reverse", "longest", "length",
                     "no_digits", "counting"}) for role in
                     ("provider", "pattern", "classifier", "check", "store")}
print(json.dumps(out))
"""


def _metadata(root: Path) -> None:
    """What ``pip install`` writes for the package: a .dist-info with its entry points."""
    project = tomllib.loads((PKG / "pyproject.toml").read_text())["project"]
    info = root / f"chorus_demo_plugin-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    lines = ["[chorus.plugins]"]
    lines += [f"{k} = {v}" for k, v in project["entry-points"]["chorus.plugins"].items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


def _run(tmp_path: Path, config: str) -> subprocess.CompletedProcess[str]:
    _metadata(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(tmp_path), str(PKG / "src"), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", SCRIPT, config], capture_output=True,
                          text=True, env=env, timeout=120)


def test_a_plugin_adds_every_kind_through_its_entry_point(tmp_path: Path) -> None:
    run = _run(tmp_path, CONFIG)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["registered"] == {"provider": ["reverse"], "pattern": ["longest"],
                                 "classifier": ["length"], "check": ["no_digits"],
                                 "store": ["counting"]}
    assert out["longest"] == "hello there, how are you today"
    assert (out["short"], out["long"]) == ("rev", "hello")
    assert out["family"] == "parallel"
    assert out["blocked"] == ["no_digits", [5, 6]]
    assert out["cache"] == ["emas", True, 1]


def test_a_plugin_kinds_config_errors_point_at_the_key(tmp_path: Path) -> None:
    bad = CONFIG.replace("classifier: {type: length, words: 3}",
                         "classifier: {type: length, words: 0}")
    run = _run(tmp_path, bad)
    assert run.returncode != 0
    assert "plugins.yaml:10: systems.routed.classifier.words" in run.stderr


def test_without_the_plugin_its_kinds_are_unknown() -> None:
    run = subprocess.run([sys.executable, "-c", SCRIPT, CONFIG], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode != 0
    assert "unknown pattern 'longest'" in run.stderr
