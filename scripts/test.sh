#!/usr/bin/env bash
# The whole quality gate: lint, strict type check, then the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
echo "== ruff" && .venv/bin/ruff check src tests benchmarks
echo "== mypy (strict, src/)" && .venv/bin/mypy
echo "== pytest" && .venv/bin/python -m pytest "$@"
