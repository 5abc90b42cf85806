import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from chorus.cli import doctor
from chorus.cli._doctor_child import build_check, feature_flags
from chorus.cli.main import main
from tests.conftest import LlamaServer

X86_INFO = ("CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | "
            "BMI2 = 1 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 | ")


def test_build_check_reads_llama_cpp_features() -> None:
    assert feature_flags(X86_INFO)[:4] == ["SSE3", "SSSE3", "AVX", "AVX2"]
    assert build_check(X86_INFO, "x86_64") == (True, " ".join(feature_flags(X86_INFO)))
    ok, why = build_check(X86_INFO + "AMX_INT8 = 1 | ", "x86_64")
    assert not ok and "AMX_INT8" in why and "bash scripts/setup.sh" in why
    ok, why = build_check("CPU : SSE3 = 1 | AVX = 1 | ", "x86_64")
    assert not ok and "without AVX2" in why
    assert build_check("CPU : NEON = 1 | ARM_FMA = 1 | ", "aarch64")[0]
    assert not build_check("CPU : ARM_FMA = 1 | ", "aarch64")[0]


def _child(tmp_path: Path, body: str) -> list[str]:
    script = tmp_path / "child.py"
    script.write_text(
        "import ctypes, json\n"
        "def emit(**f): print(json.dumps(f), flush=True)\n" + body)
    return [sys.executable, str(script)]


def test_local_checks_reads_each_result(tmp_path: Path) -> None:
    cmd = _child(tmp_path, 'emit(check="a", event="start")\n'
                           'print("a library talking")\n'
                           'emit(check="a", event="end", ok=True, detail="fine")\n'
                           'emit(check="b", event="start")\n'
                           'emit(check="b", event="end", ok=False, detail="broken")\n'
                           "raise SystemExit(1)\n")
    assert doctor.local_checks(cmd) == [doctor.Result("a", True, "fine"),
                                        doctor.Result("b", False, "broken")]


def test_a_crash_of_the_child_is_one_line_naming_cause_and_fix(tmp_path: Path) -> None:
    cmd = _child(tmp_path, 'emit(check="a", event="start")\n'
                           'emit(check="a", event="end", ok=True, detail="fine")\n'
                           'emit(check="model smollm2-135m", event="start")\n'
                           "ctypes.string_at(0)\n")
    results = doctor.local_checks(cmd)
    assert [r.ok for r in results] == [True, False]
    crash = results[-1]
    assert crash.check == "model smollm2-135m"
    assert "SIGSEGV" in crash.detail and "exit -11" in crash.detail
    assert "bash scripts/setup.sh" in crash.detail and "\n" not in crash.detail


def test_redis_urls_found_in_named_and_inline_stores() -> None:
    data = {"stores": {"shared": {"kind": "redis", "url": "redis://127.0.0.1:1/0"}},
            "systems": {"c": {"kind": "cache", "store": {"kind": "redis",
                                                         "url": "redis://h:2/1"},
                              "inner": "m"}}}
    assert doctor.redis_urls(data) == ["redis://127.0.0.1:1/0", "redis://h:2/1"]


def test_doctor_checks_redis_the_config_names(tmp_path: Path, redis_url: str,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    # The local stack has its own test below; this one is about Redis.
    monkeypatch.setattr(doctor, "local_checks", lambda: [])
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"stores:\n  shared: {{kind: redis, url: '{redis_url}'}}\n"
                   "models:\n  m: {provider: scripted, default: hi}\n")
    assert main(["doctor", "-c", str(cfg), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"check": f"redis {redis_url}", "ok": True, "detail": "answers PING"}]
    down = redis_url.rsplit(":", 1)[0] + ":1/0"
    cfg.write_text(f"stores:\n  shared: {{kind: redis, url: '{down}'}}\n"
                   "models:\n  m: {provider: scripted, default: hi}\n")
    assert main(["doctor", "-c", str(cfg)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "unreachable" in out and "1 of 1 checks failed" in out


def test_doctor_probes_endpoints_only_when_asked(tmp_path: Path, llama_server: LlamaServer,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(doctor, "local_checks", lambda: [])
    url = llama_server.base_url
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"models:\n  up: {{provider: openai, base_url: '{url}', "
                   f"model: {llama_server.model}}}\n"
                   "  down: {provider: openai, base_url: 'http://127.0.0.1:1/v1', "
                   "model: local, timeout: 2}\n")
    assert main(["doctor", "-c", str(cfg), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["doctor", "-c", str(cfg), "--json", "--endpoints"]) == 1
    by = {r["check"]: r for r in json.loads(capsys.readouterr().out)}
    assert by["endpoint up"]["ok"] and not by["endpoint down"]["ok"]


def test_doctor_is_green_on_this_machine() -> None:
    proc = subprocess.run([sys.executable, "-m", "chorus.cli.main", "doctor"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for check in ("llama.cpp build", "model smollm2-135m", "model gemma3-270m",
                  "embedder minilm"):
        assert f"ok   {check}: " in proc.stdout
    assert "all 4 checks passed" in proc.stdout


def test_doctor_help() -> None:
    proc = subprocess.run([sys.executable, "-m", "chorus.cli.main", "doctor", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "AMX" in proc.stdout and "--endpoints" in proc.stdout


def test_the_llama_cpp_build_is_the_portable_one() -> None:
    """CI runs on one CPU: what was built must not depend on it (no AMX kernels, which
    crash on some Xeons) and must have the SIMD every CPU of the architecture has."""
    info = subprocess.run(
        [sys.executable, "-c",
         "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())"],
        capture_output=True, text=True, timeout=120, check=True).stdout
    flags = feature_flags(info)
    assert flags, info
    assert not any("AMX" in f for f in flags), info
    machine = platform.machine().lower()
    assert machine in ("x86_64", "amd64", "aarch64", "arm64"), machine
    assert ("AVX2" if machine in ("x86_64", "amd64") else "NEON") in flags, info
