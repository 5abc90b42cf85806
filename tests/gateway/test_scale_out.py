"""Two `chorus serve` processes on one Redis hold one key's budget and rate limit."""

from __future__ import annotations

from pathlib import Path

import httpx

from chorus.gateway import hash_key
from tests.gateway._procs import chorus_serve

CONFIG = """\
stores:
  shared: {{kind: redis, url: "{redis}", namespace: "gw-{tag}:"}}
models:
  m:
    provider: scripted
    default: ok
    usage: {{input_tokens: 10, output_tokens: 10}}
gateway:
  store: shared
  keys:
    - name: spender
      key_sha256: {h1}
      budget: {{tokens: 100, seconds: 3600}}
    - name: chatty
      key_sha256: {h2}
      rate_limit: {{requests_per_minute: 3}}
"""


def test_budget_and_rate_limit_hold_across_processes(redis_url: str, tmp_path: Path) -> None:
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(CONFIG.format(redis=redis_url, tag=tmp_path.name,
                                 h1=hash_key("sk-spend"), h2=hash_key("sk-chat")))
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}
    with chorus_serve(cfg, tmp_path / "a.log") as a, chorus_serve(cfg, tmp_path / "b.log") as b:
        spent = [httpx.post(f"{(a, b)[i % 2]}/v1/chat/completions", json=body,
                            headers={"Authorization": "Bearer sk-spend"}).status_code
                 for i in range(10)]
        paced = [httpx.post(f"{(a, b)[i % 2]}/v1/chat/completions", json=body,
                            headers={"Authorization": "Bearer sk-chat"})
                 for i in range(6)]
    # 20 tokens a call against 100 tokens: five calls in all, not five per process.
    assert spent == [200] * 5 + [429] * 5
    # 3 requests a minute in all: the fourth is refused whichever process takes it.
    assert [r.status_code for r in paced] == [200, 200, 200, 429, 429, 429]
    assert all("retry-after" in r.headers for r in paced[3:])
