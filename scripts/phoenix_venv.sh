#!/usr/bin/env bash
# Create .venv-phoenix with Arize Phoenix, the OpenTelemetry backend the telemetry tests
# export to. It lives in a virtualenv of its own so Phoenix's pins never touch chorus's.
# Safe to run again; .ci/run calls it before the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv-phoenix/bin/phoenix ]; then
  "$PY" -m venv .venv-phoenix
  .venv-phoenix/bin/python -m pip install --quiet --upgrade pip \
    2> >(grep -v "^WARNING: Location '" >&2)
  echo "phoenix_venv: installing arize-phoenix into .venv-phoenix..." >&2
  .venv-phoenix/bin/python -m pip install --quiet "arize-phoenix==20.26.1" \
    2> >(grep -v "^WARNING: Location '" >&2)
fi
echo "phoenix_venv: $(.venv-phoenix/bin/python -c 'import phoenix; print(phoenix.__version__)')" >&2
