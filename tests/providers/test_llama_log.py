import logging
import subprocess
import sys

import pytest

from chorus import Request, run_sync
from chorus.providers.local import LocalModel


def test_gemma_load_prints_nothing_to_stderr() -> None:
    """llama.cpp's notes (Gemma's "using full-size SWA cache ...") are not the user's
    business: a load and an answer leave stderr empty."""
    code = ("from chorus import Request, run_sync\n"
            "from chorus.providers.local import LocalModel\n"
            "m = LocalModel('g', 'gemma3-270m')\n"
            "print(run_sync(m.complete(Request.of('Capital of France?', max_tokens=3))).text)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip()
    assert proc.stderr == ""


def test_llama_cpp_warnings_reach_logging(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="chorus.llama_cpp"):
        # A context size no other test uses: a fresh load, so the note is logged.
        m = LocalModel("g", "gemma3-270m", n_ctx=640)
        run_sync(m.complete(Request.of("Hi", max_tokens=1)))
    assert any("SWA cache" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records)
