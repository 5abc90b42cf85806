"""A key with a budget and a rate limit still gets its answer streamed piece by piece,
and the stream is charged to the key's budget."""

from __future__ import annotations

import asyncio
import json

import httpx

from chorus.config.builder import Config
from chorus.gateway import Gateway, create_app, hash_key
from chorus.policies.budget import Budget
from chorus.policies.ratelimit import RateLimit
from tests.gateway.conftest import serving

KEY = "sk-erin-secret"
CONFIG = f"""\
models:
  fast:
    provider: scripted
    default: hello from fast
    usage: {{input_tokens: 10, output_tokens: 5}}
    price: {{input: 1000, output: 2000}}
gateway:
  keys:
    - name: erin
      key_sha256: {hash_key(KEY)}
      budget: {{tokens: 40, seconds: 3600}}
      rate_limit: {{requests_per_minute: 60}}
"""


def stream(url: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}"},
                      json={"model": "fast", "stream": True, "max_tokens": 5,
                            "messages": [{"role": "user", "content": "hi"}]})


def test_limited_key_streams_in_pieces_and_is_charged() -> None:
    gw = Gateway.from_config(Config.from_text(CONFIG, "gateway.yaml"))
    limiter = gw.resolve("fast", gw.keys.check(f"Bearer {KEY}"))
    assert isinstance(limiter, RateLimit) and isinstance(limiter.inner, Budget)
    budget = limiter.inner
    with serving(create_app(gw)) as url:
        r = stream(url)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = [e for e in r.text.split("\n\n") if e]
        assert events[-1] == "data: [DONE]"
        chunks = [json.loads(e[6:]) for e in events[:-1]]
        texts = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
        assert [t for t in texts if t] == ["hello", " from", " fast"]  # not one piece
        spent = asyncio.run(budget.status())["spent"]["erin"]
        assert spent["tokens"] == 15  # the real usage; the estimate's hold was released
        # Each stream spends 15 tokens (estimated at 6 beforehand) of 40: after two more
        # (45 spent) nothing fits, and the refusal comes before any piece, as plain JSON.
        more = [stream(url) for _ in range(3)]
        assert [m.status_code for m in more] == [200, 200, 429]
        refused = more[-1]
        assert refused.headers["content-type"] == "application/json"
        assert refused.json()["error"]["type"] == "insufficient_quota"
        assert asyncio.run(budget.status())["spent"]["erin"]["tokens"] == 45
