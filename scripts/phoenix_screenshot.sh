#!/usr/bin/env bash
# Re-make docs/phoenix_trace.png: start Phoenix (.venv-phoenix) on a free port, send it one
# `chorus run -s router` request (prompt and answer recorded), and photograph the trace
# page in headless Chromium (Debian package `chromium`). Everything stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
PROMPT=${1:-"What is the capital of France?"}
tmp=$(mktemp -d)
free() { .venv/bin/python -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"; }
PORT=$(free)
PHOENIX_WORKING_DIR=$tmp PHOENIX_HOST=127.0.0.1 PHOENIX_PORT=$PORT PHOENIX_GRPC_PORT=$(free) \
  PHOENIX_TELEMETRY_ENABLED=false PHOENIX_ALLOW_EXTERNAL_RESOURCES=false \
  .venv-phoenix/bin/phoenix serve > "$tmp/phoenix.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 300); do curl -sf -o /dev/null "127.0.0.1:$PORT/healthz" && break; sleep 1; done
OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$PORT OTEL_METRICS_EXPORTER=none \
  OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true HF_HUB_OFFLINE=1 \
  .venv/bin/chorus run -s router "$PROMPT"
sleep 2
read -r PROJECT TRACE < <(curl -s "127.0.0.1:$PORT/v1/projects/default/spans?limit=50" |
  .venv/bin/python -c "import json,sys; d=json.load(sys.stdin)['data']; r=[s for s in d if not s['parent_id']][0]; print('UHJvamVjdDox', r['context']['trace_id'])")
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$tmp/chrome" --hide-scrollbars --window-size=1400,860 \
  --virtual-time-budget=20000 --screenshot="$tmp/shot.png" \
  "http://127.0.0.1:$PORT/projects/$PROJECT/traces/$TRACE" 2> "$tmp/chrome.log" || {
    tail -20 "$tmp/chrome.log"; exit 1; }
mkdir -p docs
.venv/bin/python - "$tmp/shot.png" docs/phoenix_trace.png <<'PY'
import sys
from PIL import Image  # matplotlib's dependency, in the dev setup
im = Image.open(sys.argv[1]).convert("RGB")
im.quantize(colors=64).save(sys.argv[2], optimize=True)
PY
ls -l docs/phoenix_trace.png
