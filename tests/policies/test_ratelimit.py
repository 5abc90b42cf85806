"""Rate limit: bucket math as plain functions, then queue vs refuse, per-key buckets,
token limits, the deadline bound and store faults."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from chorus.config.builder import Config
from chorus.core.context import scope
from chorus.core.errors import RateLimitError, StoreUnavailable
from chorus.core.types import Request
from chorus.policies.ratelimit import RateLimit, bucket, next_sleep
from chorus.providers.scripted import ScriptedModel
from chorus.stores import MemoryStore
from chorus.stores._base import bucket_take
from tests.policies._faulty import FlakyStore


def req(key: str | None = None, max_tokens: int = 10) -> Request:
    r = Request.of("hello there", max_tokens=max_tokens)
    return Request(r.messages, r.params, {"key": key}) if key else r


# -- math ---------------------------------------------------------------------------------


def test_bucket_and_next_sleep() -> None:
    assert bucket(600) == (10.0, 600.0)
    assert bucket(600, burst_s=0.1) == (10.0, pytest.approx(1.0))
    assert next_sleep(0.5, "refuse", 0, 60, None) is None
    assert next_sleep(0.5, "queue", 0, 60, None) == 0.5
    assert next_sleep(0.5, "queue", 59.8, 60, None) is None  # past max_wait_s in all
    assert next_sleep(0.5, "queue", 0, 60, 0.2) is None  # past the deadline
    assert next_sleep(math.inf, "queue", 0, 60, None) is None
    # The store's bucket step: a full bucket of 1 at 10/s; the second take waits 0.1 s.
    left, wait = bucket_take(1.0, 0.0, 0.0, 1, 10.0, 1.0)
    assert (left, wait) == (0.0, 0.0)
    assert bucket_take(left, 0.0, 0.0, 1, 10.0, 1.0)[1] == pytest.approx(0.1)


# -- the wrapper --------------------------------------------------------------------------


async def test_queue_waits_for_the_bucket() -> None:
    model = ScriptedModel("m", default="ok")
    rl = RateLimit("rl", model, requests_per_minute=600, burst_s=0.1, on_limit="queue")
    t = time.perf_counter()
    answers = await asyncio.gather(*(rl.complete(req()) for _ in range(3)))
    wall = time.perf_counter() - t
    assert [a.text for a in answers] == ["ok"] * 3
    assert wall >= 0.18  # one request per 0.1 s after the first
    waits = sorted(a.trace.attributes["waited_s"] for a in answers if a.trace)
    assert waits[0] == 0 and waits[2] >= 0.15


async def test_refuse_raises_with_retry_after() -> None:
    model = ScriptedModel("m", default="ok")
    rl = RateLimit("rl", model, requests_per_minute=600, burst_s=0.1, on_limit="refuse")
    await rl.complete(req())
    with pytest.raises(RateLimitError, match=r"over 600 requests/min; retry in 0\.\d\ds") as info:
        await rl.complete(req())
    assert info.value.retry_after is not None and 0.03 < info.value.retry_after <= 0.1
    assert len(model.calls) == 1


async def test_queue_is_bounded_by_the_deadline() -> None:
    model = ScriptedModel("m", default="ok")
    rl = RateLimit("rl", model, requests_per_minute=60, burst_s=1, on_limit="queue")
    await rl.complete(req())
    t = time.perf_counter()
    with scope(deadline_s=0.2), pytest.raises(RateLimitError, match="retry in"):
        await rl.complete(req())  # the wait (~1 s) outlasts the deadline: refuse at once
    assert time.perf_counter() - t < 0.1


async def test_per_key_buckets_and_shared_per_model() -> None:
    model = ScriptedModel("m", default="ok")
    store = MemoryStore()
    rl = RateLimit("rl", model, requests_per_minute=60, burst_s=1, per="key",
                   on_limit="refuse", store=store)
    await rl.complete(req("alice"))
    await rl.complete(req("bob"))
    with pytest.raises(RateLimitError, match="for key 'alice'"):
        await rl.complete(req("alice"))
    other = RateLimit("other", model, requests_per_minute=60, burst_s=1, per="key",
                      on_limit="refuse", store=store)
    with pytest.raises(RateLimitError):
        await other.complete(req("bob"))  # the same model's bucket, through the store
    assert (await rl.status())["buckets"] == 2


async def test_tokens_per_minute() -> None:
    model = ScriptedModel("m", default="ok")
    # 3 prompt tokens + 10 output tokens a request; the bucket holds 30.
    rl = RateLimit("rl", model, tokens_per_minute=1800, burst_s=1, on_limit="refuse")
    await rl.complete(req())
    await rl.complete(req())
    with pytest.raises(RateLimitError, match="tokens/min"):
        await rl.complete(req())
    with pytest.raises(RateLimitError, match="needs 103 tokens.*can ever allow") as info:
        await rl.complete(req(max_tokens=100))
    assert info.value.retry_after is None
    assert len(model.calls) == 2


async def test_store_faults() -> None:
    model = ScriptedModel("m", default="ok")
    lenient = RateLimit("rl", model, requests_per_minute=1, store=FlakyStore(),
                        on_store_error="open")
    for _ in range(3):  # the limit cannot be checked: let through, noted
        answer = await lenient.complete(req())
        assert answer.trace is not None and answer.trace.attributes["store_errors"]
    strict = RateLimit("rl", model, requests_per_minute=1, store=FlakyStore(),
                       on_store_error="closed")
    with pytest.raises(StoreUnavailable, match="rate limit 'rl': cannot take tokens"):
        await strict.complete(req())
    assert len(model.calls) == 3


def test_yaml_ratelimit() -> None:
    cfg = Config.from_text("""
models: {m: {provider: scripted, default: ok}}
systems:
  paced: {kind: ratelimit, inner: m, requests_per_minute: 30, per: session, on_limit: refuse}
""")
    rl = cfg.get("paced")
    assert isinstance(rl, RateLimit)
    assert (rl.rpm, rl.per, rl.on_limit) == (30, "session", "refuse")
