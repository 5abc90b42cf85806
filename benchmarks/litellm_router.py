"""Time LiteLLM's Router.acompletion on a mock_response deployment (run with the
benchmark venv that has litellm; bench_overhead.py calls this in the same run).

Prints one JSON object: {"litellm_version", "per_call_us": [...]}.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from importlib.metadata import version

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
logging.disable(logging.WARNING)


async def main(calls: int, rounds: int) -> None:
    import litellm
    from litellm import Router

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    router = Router(model_list=[{
        "model_name": "m",
        "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": "x",
                           "mock_response": "Paris"},
    }])
    msgs = [{"role": "user", "content": "What is the capital of France?"}]
    for _ in range(20):
        await router.acompletion(model="m", messages=msgs)
    per_call = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(calls):
            await router.acompletion(model="m", messages=msgs)
        per_call.append((time.perf_counter() - t) / calls * 1e6)
    print(json.dumps({"litellm_version": version("litellm"), "per_call_us": per_call}))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
