"""Property-based requests from the OpenAPI document: the gateway never answers 5xx
for its own reasons (scripted systems, so any 500 would be the gateway's)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from chorus.gateway import Gateway, create_app
from chorus.patterns.fallback import Fallback
from chorus.providers.scripted import ScriptedModel
from tests.gateway.conftest import serving


def test_schemathesis_finds_no_server_errors(tmp_path: Path) -> None:
    exe = shutil.which("st", path=str(Path(__file__).parents[2] / ".venv" / "bin"))
    if exe is None:
        pytest.skip("schemathesis is not installed")
    ok = ScriptedModel("ok", default="fine", cycle=True)
    gw = Gateway({"ok": ok, "fb": Fallback("fb", [ScriptedModel(
        "down", fail_with="server_error", fail_times=-1), ok], cooldown_s=0)})
    with serving(create_app(gw)) as url:
        run = subprocess.run(
            [exe, "run", f"{url}/openapi.json", "--url", url, "--checks", "not_a_server_error",
             "--max-examples", "60", "--phases", "examples,coverage,fuzzing",
             "--request-timeout", "5", "--no-color"],
            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "generated" in run.stdout and ", 0 passed" not in run.stdout, run.stdout[-2000:]
