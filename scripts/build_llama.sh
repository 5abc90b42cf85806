#!/usr/bin/env bash
# Build llama-cpp-python for any common CPU of this architecture, not for this one, and
# install it into the given Python's environment.
#
# A native build (pip's default) compiles for the CPU it runs on: on a recent Intel Xeon it
# includes llama.cpp's AMX kernels, which crash in the first decode (ggml-org/llama.cpp#20824),
# and the wheel it leaves in pip's cache crashes on an older CPU. So the flags are fixed here
# (BENCHMARKS.md, "llama.cpp build", has the tok/s that chose them), the wheel is built
# without pip's cache and kept under a folder named by a hash of the version, the flags, the
# architecture and the Python, and an environment built with other flags is reinstalled.
# CHORUS_LLAMA_CMAKE_ARGS replaces the flags (for instance "-DGGML_NATIVE=ON" on a machine
# you know), under its own hash.
set -euo pipefail
PYBIN=${1:-.venv/bin/python}
VERSION=0.3.36
case "$(uname -m)" in
  x86_64|amd64)
    # AVX2, FMA, F16C and BMI2: every x86-64 CPU since Intel Haswell (2013) and AMD
    # Excavator (2015). No AVX-512 and no AMX: the kernels that vary most between CPUs.
    DEFAULT_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF -DGGML_AVX_VNNI=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF" ;;
  *)
    # aarch64 and the rest: the architecture's baseline, no -march=native.
    DEFAULT_ARGS="-DGGML_NATIVE=OFF" ;;
esac
ARGS=${CHORUS_LLAMA_CMAKE_ARGS:-$DEFAULT_ARGS}
PYVER=$("$PYBIN" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
KEY=$(printf '%s\n' "$VERSION" "$ARGS" "$(uname -m)" "$PYVER" | sha256sum | cut -c1-16)
CACHE=${CHORUS_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chorus/wheels}/llama-cpp-python-$VERSION-$KEY
STAMP=$(dirname "$PYBIN")/../.llama-cpp-build
pipq() { "$PYBIN" -m pip "$@" 2> >(grep -v "^WARNING: Location '" >&2); }
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$KEY" ] && "$PYBIN" -c 'import llama_cpp' 2>/dev/null; then
  exit 0
fi
if ! ls "$CACHE"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "setup: compiling llama.cpp for any $(uname -m) CPU (about 10 minutes on 2 cores, once)..." >&2
  mkdir -p "$CACHE.tmp"
  CMAKE_ARGS="$ARGS" CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
    pipq wheel --quiet --no-cache-dir --no-deps -w "$CACHE.tmp" "llama-cpp-python==$VERSION"
  printf '%s\n' "$ARGS" > "$CACHE.tmp/CMAKE_ARGS"
  rm -rf "$CACHE" && mv "$CACHE.tmp" "$CACHE"
fi
pipq install --quiet --force-reinstall --no-deps "$CACHE"/llama_cpp_python-*.whl
# Its own dependencies (numpy, jinja2, diskcache, typing-extensions) from the index.
pipq install --quiet "$(ls "$CACHE"/llama_cpp_python-*.whl)"
printf '%s\n' "$KEY" > "$STAMP"
