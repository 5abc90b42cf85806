"""The checks ``chorus doctor`` runs in a child process: everything here calls native code
(llama.cpp, torch) that may crash the process outright on a CPU it was not built for.

Each check prints one JSON line when it starts and one when it ends, so the parent knows
which check was running when the child died. Run as ``python -m chorus.cli._doctor_child``.
"""

from __future__ import annotations

import asyncio
import faulthandler
import json
import platform
import re
import sys
import time
from collections.abc import Callable

from chorus.core.errors import ChorusError

__all__ = ["build_check", "feature_flags", "main"]

# Features llama.cpp's CPU backend reports; AMX kernels crash on some Xeons
# (ggml-org/llama.cpp#20824), so a build that has them is not the portable one.
_FORBIDDEN = ("AMX",)
_NEEDED = {"x86_64": "AVX2", "amd64": "AVX2", "aarch64": "NEON", "arm64": "NEON"}
_FLAG = re.compile(r"([A-Z][A-Z0-9_]*) = 1")

REBUILD = "rebuild it with `bash scripts/setup.sh` (the portable build)"


def feature_flags(info: str) -> list[str]:
    """The features llama.cpp says it was built with (``AVX2 = 1`` ...), in its order."""
    return list(dict.fromkeys(_FLAG.findall(info)))


def build_check(info: str, machine: str) -> tuple[bool, str]:
    """Whether llama.cpp's system info describes the portable build, and a one-line
    summary of its features."""
    flags = feature_flags(info)
    shown = " ".join(flags) or "none reported"
    bad = [f for f in flags if any(f.startswith(x) for x in _FORBIDDEN)]
    if bad:
        return False, f"built with {', '.join(bad)} kernels, which crash on some CPUs: {REBUILD}"
    need = _NEEDED.get(machine.lower())
    if need is not None and need not in flags:
        return False, f"built without {need} ({shown}): {REBUILD}"
    return True, shown


def _llama_build() -> str:
    try:
        import llama_cpp
    except ImportError:
        raise ChorusError("llama-cpp-python is not installed: "
                          "pip install 'chorus-llm[local]' (or bash scripts/setup.sh)") from None
    info = llama_cpp.llama_print_system_info().decode("utf-8", "replace")
    ok, detail = build_check(info, platform.machine())
    if not ok:
        raise ChorusError(detail)
    return f"llama-cpp-python {llama_cpp.__version__}: {detail}"


def _model(name: str) -> Callable[[], str]:
    def check() -> str:
        from chorus.core.types import Request
        from chorus.providers.local import LocalModel

        model = LocalModel(f"doctor-{name}", name)
        t0 = time.perf_counter()
        model.load()
        loaded = time.perf_counter() - t0
        out = asyncio.run(model.complete(Request.of("Say hello.", max_tokens=4, temperature=0)))
        if out.usage.output_tokens < 1:
            raise ChorusError(f"{name} decoded no token")
        return (f"loaded in {loaded:.1f}s, decoded {out.usage.output_tokens} tokens "
                f"in {out.latency_s:.2f}s")
    return check


def _embedder() -> str:
    from chorus.embeddings.local import MiniLMEmbedder

    emb = MiniLMEmbedder()
    t0 = time.perf_counter()
    vectors = asyncio.run(emb.embed(["The capital of France is Paris."]))
    dims = len(vectors[0])
    return f"all-MiniLM-L6-v2 embedded a sentence ({dims} dimensions) in " \
           f"{time.perf_counter() - t0:.1f}s"


CHECKS: dict[str, Callable[[], str]] = {
    "llama.cpp build": _llama_build,
    "model smollm2-135m": _model("smollm2-135m"),
    "model gemma3-270m": _model("gemma3-270m"),
    "embedder minilm": _embedder,
}


def _emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def main() -> int:
    faulthandler.enable()
    failed = False
    for name, check in CHECKS.items():
        _emit(check=name, event="start")
        try:
            detail = check()
        except (ChorusError, ValueError, OSError, ImportError) as exc:
            failed = True
            _emit(check=name, event="end", ok=False, detail=str(exc))
        else:
            _emit(check=name, event="end", ok=True, detail=detail)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
