"""The gateway's own counters, rendered as Prometheus text (exposition format 0.0.4).

Kept in process (each worker has its own; Prometheus sums them). Recording is a few
dict updates, so it stays off the latency budget of the hot path.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from typing import Literal

__all__ = ["BUCKETS", "Metrics", "READ_TIMEOUTS", "read_timeout"]

#: The server's own 408s (gateway/_uvicorn.py): requests whose head or body came too
#: slowly, cut off before any endpoint saw them. Kept per process, as the server is.
READ_TIMEOUTS: Counter[str] = Counter()


def read_timeout(stage: Literal["head", "body"]) -> None:
    """Count one request cut off because its ``stage`` came too slowly."""
    READ_TIMEOUTS[stage] += 1

#: Latency histogram bounds in seconds.
BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                              30.0, 60.0)

Labels = tuple[str, str]  # (system, model)


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    def __init__(self) -> None:
        self.requests: defaultdict[tuple[str, str, str, int], int] = defaultdict(int)
        self.errors: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.tokens: defaultdict[tuple[str, str, str], int] = defaultdict(int)
        self.cost: defaultdict[Labels, float] = defaultdict(float)
        self.hist: dict[Labels, list[int]] = {}
        self.hist_sum: defaultdict[Labels, float] = defaultdict(float)

    def record(self, endpoint: str, system: str, model: str, status: int, latency_s: float,
               input_tokens: int = 0, output_tokens: int = 0, cost_usd: float = 0.0) -> None:
        self.requests[(endpoint, system, model, status)] += 1
        if input_tokens:
            self.tokens[(system, model, "input")] += input_tokens
        if output_tokens:
            self.tokens[(system, model, "output")] += output_tokens
        if cost_usd:
            self.cost[(system, model)] += cost_usd
        key = (system, model)
        counts = self.hist.get(key)
        if counts is None:
            counts = self.hist[key] = [0] * (len(BUCKETS) + 1)
        counts[bisect.bisect_left(BUCKETS, latency_s)] += 1
        self.hist_sum[key] += latency_s

    def error(self, system: str, code: str) -> None:
        self.errors[(system, code)] += 1

    def render(self) -> str:
        out: list[str] = [
            "# HELP chorus_gateway_requests_total Requests answered, by endpoint, system, "
            "model and status.",
            "# TYPE chorus_gateway_requests_total counter",
        ]
        for (ep, system, model, status), n in sorted(self.requests.items()):
            out.append(f'chorus_gateway_requests_total{{endpoint="{_esc(ep)}",'
                       f'system="{_esc(system)}",model="{_esc(model)}",status="{status}"}} {n}')
        out += ["# HELP chorus_gateway_errors_total Error responses, by system and error code.",
                "# TYPE chorus_gateway_errors_total counter"]
        for (system, code), n in sorted(self.errors.items()):
            out.append(f'chorus_gateway_errors_total{{system="{_esc(system)}",'
                       f'code="{_esc(code)}"}} {n}')
        out += ["# HELP chorus_gateway_read_timeouts_total Requests the server answered 408 "
                "and closed because their head or body came too slowly, by stage.",
                "# TYPE chorus_gateway_read_timeouts_total counter"]
        for stage in ("head", "body"):
            out.append(f'chorus_gateway_read_timeouts_total{{stage="{stage}"}} '
                       f"{READ_TIMEOUTS[stage]}")
        out += ["# HELP chorus_gateway_tokens_total Tokens used, by system, model and type.",
                "# TYPE chorus_gateway_tokens_total counter"]
        for (system, model, kind), n in sorted(self.tokens.items()):
            out.append(f'chorus_gateway_tokens_total{{system="{_esc(system)}",'
                       f'model="{_esc(model)}",type="{kind}"}} {n}')
        out += ["# HELP chorus_gateway_cost_usd_total US dollars spent, by system and model.",
                "# TYPE chorus_gateway_cost_usd_total counter"]
        for (system, model), usd in sorted(self.cost.items()):
            out.append(f'chorus_gateway_cost_usd_total{{system="{_esc(system)}",'
                       f'model="{_esc(model)}"}} {usd:.10g}')
        out += ["# HELP chorus_gateway_request_seconds Request latency, by system and model.",
                "# TYPE chorus_gateway_request_seconds histogram"]
        for (system, model), counts in sorted(self.hist.items()):
            labels = f'system="{_esc(system)}",model="{_esc(model)}"'
            total = 0
            for bound, n in zip((*BUCKETS, float("inf")), counts, strict=True):
                total += n
                le = "+Inf" if bound == float("inf") else f"{bound:g}"
                out.append(f'chorus_gateway_request_seconds_bucket{{{labels},le="{le}"}} {total}')
            out.append(f"chorus_gateway_request_seconds_sum{{{labels}}} "
                       f"{self.hist_sum[(system, model)]:.6f}")
            out.append(f"chorus_gateway_request_seconds_count{{{labels}}} {total}")
        return "\n".join(out) + "\n"
