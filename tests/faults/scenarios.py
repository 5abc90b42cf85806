"""The upstream-fault scenarios, each with its expected outcome, shared by the fault suite
(tests/faults/test_faults.py) and the benchmark that times them (benchmarks/failover_faults.py).

Every scenario runs the common baseline: a fallback over a ``retry`` of 3 attempts around
the primary, then one fallback model, with seconds-scale limits (``LIMITS``) so the whole
suite takes seconds. A caller asks through ``chorus serve`` with the official ``openai``
SDK, as a user would.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import openai

from tests.faults.fault_server import ANSWER

__all__ = ["FLAKY", "LIMITS", "SCENARIOS", "Outcome", "Scenario", "ask", "config"]

#: Per leaf: connect and between bytes, to the first token, between pieces.
LIMITS = "timeout: 2, first_token_s: 1, idle_s: 1"
PRICE = "price: {input: 1, output: 2}"
#: The caller's deadline, and the gateway's.
CALLER_S = 8.0

#: (primary fault, scenario title) of the baseline systems s-<fault>.
FAULTS = ["429-ra", "429", "500-once", "503", "reset", "silent", "slow-first", "cut",
          "stall", "malformed", "no-done", "ctx", "filter", "flaky"]


def config(base_url: str) -> str:
    """The YAML of every leaf and system the scenarios use, against ``base_url``."""
    up = f'base_url: "{base_url}", api_key: none, {LIMITS}, {PRICE}'
    lines = ["models:",
             f"  fb: {{provider: openai, model: ok, {up}, context_window: 100000}}",
             f"  fb-np: {{provider: openai, model: no-prefill, {up}, prefill: true}}"]
    lines += [f"  p-{f}: {{provider: openai, model: \"{f}\", {up}, context_window: 64}}"
              for f in FAULTS]
    # A silent primary with only a long transport timeout: what saves the caller is the
    # fallback's share of the caller's own deadline.
    lines.append(f'  p-slow: {{provider: openai, model: silent, base_url: "{base_url}", '
                 f'api_key: none, timeout: 30}}')
    lines.append("systems:")
    lines.append("  s-deadline: {kind: fallback, cooldown_s: 0, models: [p-slow, fb]}")
    for f in FAULTS:
        cooldown = 0.3 if f == "flaky" else 0
        lines.append(f"  s-{f}: {{kind: fallback, cooldown_s: {cooldown}, models: "
                     f"[{{kind: retry, inner: p-{f}, attempts: 3, base_s: 0.05}}, fb]}}")
    lines.append("  s-prefill: {kind: fallback, cooldown_s: 0, models: [p-cut, fb-np]}")
    lines.append("  s-norescue: {kind: fallback, cooldown_s: 0, rescue: false, "
                 "models: [p-cut, fb]}")
    lines.append(f"gateway: {{timeout_s: {CALLER_S}}}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Scenario:
    """One fault and what the caller must get: an answer (``text``, from ``model``, the
    answering leaf) or a clean error (``error``: "http 400", "error event")."""

    name: str
    system: str
    stream: bool
    expect: str  # what chorus should do, in words (the benchmark's table shows it)
    model: str | None = None
    text: str = ANSWER
    error: str | None = None


SCENARIOS = [
    Scenario("429 with Retry-After", "s-429-ra", False, "waits Retry-After, retries",
             model="p-429-ra"),
    Scenario("429 without Retry-After", "s-429", False, "backs off, retries", model="p-429"),
    Scenario("500 once", "s-500-once", False, "retries", model="p-500-once"),
    Scenario("503 persistent", "s-503", False, "retries, then the fallback", model="fb"),
    Scenario("reset before headers", "s-reset", True, "retries, then the fallback",
             model="fb"),
    Scenario("no response", "s-silent", True, "first-token limit, fallback", model="fb"),
    Scenario("slow first token", "s-slow-first", True, "first-token limit, fallback",
             model="fb"),
    Scenario("cut stream", "s-cut", True, "rescue: the fallback continues", model="fb"),
    Scenario("stalled stream", "s-stall", True, "idle limit, rescue", model="fb"),
    Scenario("malformed chunk", "s-malformed", True, "rescue", model="fb"),
    Scenario("no [DONE] (finish_reason sent)", "s-no-done", True,
             "the finished answer stands", model="p-no-done"),
    Scenario("400 context length", "s-ctx", False, "the larger-window fallback", model="fb"),
    Scenario("400 content filter", "s-filter", False, "a clean 400, no failover",
             error="http 400"),
    Scenario("fallback refuses a prefill", "s-prefill", True,
             "rescue asks to continue instead", model="fb-np"),
    Scenario("cut stream, rescue off", "s-norescue", True, "an explicit error event",
             error="error event"),
]


#: Asked 20 times while its primary is down for a while, then back.
FLAKY = Scenario("primary down, then back", "s-flaky", False,
                 "the fallback meanwhile, the primary once healthy", model="fb")


@dataclass(frozen=True)
class Outcome:
    """What the caller got: text and the answering model (``models``: of every chunk),
    or the error's status; and how long it took."""

    seconds: float
    text: str = ""
    model: str | None = None
    models: tuple[str, ...] = ()
    finish: str | None = None
    error: str | None = None  # "http NNN", "error event" or "transport"
    detail: str = ""
    cost_usd: float | None = None

    def holds(self, s: Scenario) -> bool:
        if s.error is not None:
            return self.error == s.error and not self.finish
        return (self.text == s.text and self.model == s.model and self.finish == "stop"
                and self.seconds < CALLER_S)


def client(gateway_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway_url}/v1", api_key="none", max_retries=0,
                         timeout=CALLER_S)


def ask(c: openai.OpenAI, s: Scenario) -> Outcome:
    """Ask scenario ``s``'s system the capital of France, as the caller would."""
    msg: list[Any] = [{"role": "user", "content": "What is the capital of France?"}]
    t0 = time.perf_counter()
    if not s.stream:
        try:
            r = c.chat.completions.with_raw_response.create(model=s.system, messages=msg)
        except openai.APIStatusError as exc:
            return Outcome(time.perf_counter() - t0, error=f"http {exc.status_code}",
                           detail=str(exc))
        except openai.APIError as exc:
            return Outcome(time.perf_counter() - t0, error="transport", detail=str(exc))
        body = r.parse()
        return Outcome(time.perf_counter() - t0, body.choices[0].message.content or "",
                       body.model, (body.model,), body.choices[0].finish_reason,
                       cost_usd=float(r.headers["x-chorus-cost-usd"]))
    parts: list[str] = []
    models: list[str] = []
    finish = None
    cost = None
    try:
        for ch in c.chat.completions.create(model=s.system, messages=msg, stream=True,
                                            stream_options={"include_usage": True}):
            if ch.choices:
                parts.append(ch.choices[0].delta.content or "")
                finish = ch.choices[0].finish_reason or finish
            if not models or models[-1] != ch.model:
                models.append(ch.model)
            extra = ch.model_extra or {}
            if "chorus" in extra:
                cost = extra["chorus"]["cost_usd"]
    except openai.APIStatusError as exc:
        return Outcome(time.perf_counter() - t0, "".join(parts), finish=finish,
                       error=f"http {exc.status_code}", detail=str(exc))
    except openai.APIError as exc:
        # An error event after the first piece: the SDK raises it with the event's body.
        kind = "transport" if isinstance(exc, openai.APIConnectionError) else "error event"
        return Outcome(time.perf_counter() - t0, "".join(parts), models=tuple(models),
                       finish=finish, error=kind, detail=str(exc))
    return Outcome(time.perf_counter() - t0, "".join(parts), models[-1] if models else None,
                   tuple(models), finish, cost_usd=cost)
