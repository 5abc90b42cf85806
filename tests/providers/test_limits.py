"""Per-leaf time limits (first token, between pieces, total), each a ``timeout`` that
names the limit; a stream that breaks after its first piece carries what it sent."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from tests.faults.fault_server import FaultServer

from chorus.core.errors import ProviderTimeout
from chorus.core.types import Completion, Request
from chorus.providers import Limits
from chorus.providers.local import LocalModel
from chorus.providers.openai import OpenAIModel

Q = Request.of("What is the capital of France?")


@pytest.fixture(scope="module")
def faults() -> Iterator[FaultServer]:
    with FaultServer() as fs:
        yield fs


def upstream(faults: FaultServer, fault: str, **limits: float) -> OpenAIModel:
    return OpenAIModel(f"p-{fault}", model_id=fault, base_url=faults.base_url,
                       api_key="none", timeout=30, limits=Limits(**limits))


async def test_first_token_idle_and_total_limits(faults: FaultServer) -> None:
    cases = [("slow-first", {"first_token_s": 0.3}, "first_token_s"),
             ("silent", {"first_token_s": 0.3}, "first_token_s"),
             ("stall", {"idle_s": 0.3}, "idle_s"),
             ("stall", {"total_s": 0.4}, "total_s")]
    for fault, limits, named in cases:
        model = upstream(faults, fault, **limits)
        t0 = time.perf_counter()
        with pytest.raises(ProviderTimeout, match=f"`{named}:`") as info:
            _ = [e async for e in model.stream(Q)]
        assert time.perf_counter() - t0 < 2, fault  # not the transport's 30 s
        if fault == "stall":  # it had sent "Paris is the ": that part is priced
            partial = info.value.partial
            assert partial is not None and partial.text == "Paris is the "
        await model.aclose()
    whole = upstream(faults, "silent", total_s=0.3)
    with pytest.raises(ProviderTimeout, match="`total_s:`"):
        await whole.complete(Q)
    await whole.aclose()


async def test_limits_leave_a_healthy_answer_alone(faults: FaultServer) -> None:
    model = upstream(faults, "ok", first_token_s=1, idle_s=1, total_s=2)
    final = [e async for e in model.stream(Q)][-1]
    assert isinstance(final, Completion) and final.text == "Paris is the capital of France."
    await model.aclose()


@pytest.mark.local
async def test_a_local_model_keeps_its_limits_and_stays_usable() -> None:
    model = LocalModel("smollm2", "smollm2-135m", limits=Limits(first_token_s=1e-4))
    ok, why = model.usable()
    if not ok:
        pytest.skip(why)
    model.load()
    with pytest.raises(ProviderTimeout, match="first_token_s"):
        _ = [e async for e in model.stream(Request.of("Count to ten.", max_tokens=32))]
    timed = LocalModel("smollm2", "smollm2-135m", limits=Limits(total_s=1e-3))
    with pytest.raises(ProviderTimeout, match="total_s"):
        await timed.complete(Request.of("Count to ten.", max_tokens=32))
    # The cut-off decoding was stopped: the model answers the next call.
    free = LocalModel("smollm2", "smollm2-135m")
    answer = await free.complete(Request.of("Say hi.", max_tokens=4, temperature=0))
    assert answer.usage.output_tokens > 0
