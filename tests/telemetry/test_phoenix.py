"""chorus's spans in a real observability backend: Arize Phoenix, read back through its
REST API (the tree, the GenAI attributes, cost, decisions and failures), from the
library and from ``chorus run``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chorus import telemetry
from chorus.core.errors import AllModelsFailed
from chorus.core.model import call
from chorus.core.types import Request
from tests.telemetry._systems import SYSTEMS_YAML
from tests.telemetry.conftest import ROOT, Phoenix

DOCS = ROOT / "docs" / "telemetry.md"
# Phoenix adds its own (OpenInference) names to what it stores; they are not chorus's.
PHOENIX_OWN = re.compile(r"^(llm\.(system|model_name|provider|finish_reason|invocation_parameters"
                         r"|token_count\.total)|(input|output)\.mime_type"
                         r"|openinference\.project\.name)$")


@pytest.fixture
def project(monkeypatch: pytest.MonkeyPatch, phoenix: Phoenix) -> Iterator[str]:
    """A Phoenix project of this test's own; chorus exports into it over OTLP/HTTP."""
    name = f"chorus-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", f"openinference.project.name={name}")
    telemetry.enable(endpoint=phoenix.url, protocol="http/protobuf", metrics=False)
    try:
        yield name
    finally:
        telemetry.disable()


def trees(spans: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each trace's root span by name, with its ``children`` (by name) filled in."""
    by_id = {s["context"]["span_id"]: {**s, "children": {}} for s in spans}
    roots: dict[str, dict[str, Any]] = {}
    for s in by_id.values():
        parent = by_id.get(s["parent_id"] or "")
        if parent is None:
            roots[s["name"]] = s
        else:
            assert parent["context"]["trace_id"] == s["context"]["trace_id"]
            parent["children"][s["name"]] = s
    return roots


def documented() -> set[str]:
    return set(re.findall(r"^\| `([a-z_.]+)`", DOCS.read_text(), flags=re.M))


async def test_router_vote_and_failing_fallback_as_phoenix_shows_them(
        phoenix: Phoenix, project: str) -> None:
    from chorus.config import Config

    cfg = Config.from_text(SYSTEMS_YAML)
    routed = await call(cfg.get("router"), Request.of("What is 2+2?"))
    voted = await call(cfg.get("vote"), Request.of("Capital of France?"))
    with pytest.raises(AllModelsFailed):
        await call(cfg.get("fallback"), Request.of("Anyone there?"))
    telemetry.flush()
    spans = phoenix.spans(project, want=10)
    roots = trees(spans)
    assert set(roots) == {"router router", "vote vote", "fallback fallback"}

    router = roots["router router"]
    assert set(router["children"]) == {"chat clf", "chat solver"}
    assert router["span_kind"] == "CHAIN" and router["status_code"] == "UNSET"
    ra = router["attributes"]
    assert (ra["chorus.router.route"], ra["chorus.router.model"]) == ("math", "solver")
    assert ra["chorus.cost_usd"] == pytest.approx(routed.cost_usd) and routed.cost_usd > 0
    solver = router["children"]["chat solver"]
    sa = solver["attributes"]
    assert solver["span_kind"] == "LLM"
    assert (sa["gen_ai.operation.name"], sa["gen_ai.provider.name"]) == ("chat", "scripted")
    assert sa["gen_ai.request.model"] == sa["gen_ai.response.model"] == "solver"
    assert (sa["gen_ai.usage.input_tokens"], sa["gen_ai.usage.output_tokens"]) == (12, 2)
    assert sa["gen_ai.response.finish_reasons"] == ["stop"]
    assert sa["chorus.cost_usd"] == pytest.approx((12 * 3 + 2 * 15) / 1e6)

    vote = roots["vote vote"]
    assert set(vote["children"]) == {"chat a", "chat b", "chat c"}
    va = vote["attributes"]
    assert va["chorus.vote.winner"] == "paris" and voted.text == "Paris"
    assert json.loads(va["chorus.vote.tally"])["paris"]["models"] == ["a", "b"]
    assert va["chorus.cost_usd"] == pytest.approx(voted.cost_usd)

    fallback = roots["fallback fallback"]
    assert set(fallback["children"]) == {"chat down1", "chat down2"}
    for span in (fallback, *fallback["children"].values()):
        assert span["status_code"] == "ERROR"
        assert [e["name"] for e in span["events"]] == ["exception"]
    assert fallback["attributes"]["error.type"] == "AllModelsFailed"
    assert fallback["children"]["chat down1"]["attributes"]["error.type"] == "ServerError"
    assert "every model failed" in fallback["status_message"]

    # Every name chorus put on these spans is in the one table of docs/telemetry.md.
    names = {k for s in spans for k in s["attributes"] if not PHOENIX_OWN.match(k)}
    assert names - documented() == set()


def test_chorus_run_exports_its_tree_with_nothing_but_the_otel_variables(
        phoenix: Phoenix, tmp_path: Path) -> None:
    config = tmp_path / "systems.yaml"
    config.write_text(SYSTEMS_YAML)
    project = f"chorus-run-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": phoenix.url,
           "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_METRICS_EXPORTER": "none",
           "OTEL_RESOURCE_ATTRIBUTES": f"openinference.project.name={project}",
           "OTEL_SERVICE_NAME": "chorus-cli-test"}
    out = subprocess.run([str(ROOT / ".venv" / "bin" / "chorus"), "run", "-c", str(config),
                          "-s", "router", "What is 2+2?"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "4"
    roots = trees(phoenix.spans(project, want=3))
    assert set(roots["router router"]["children"]) == {"chat clf", "chat solver"}
