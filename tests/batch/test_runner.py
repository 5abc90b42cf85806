"""The dispatcher with the local engine, in process: records, failures, the budget."""

import asyncio
from pathlib import Path

import pytest

from chorus.batch import Job, Writer, run_local, stream
from tests.batch._jobs import records, write_config, write_items


def _run(tmp_path: Path, n: int, *, system: str = "job", concurrency: int = 4,
         latency: float = 0.0, max_tokens: int = 512, **options: object) -> tuple:  # type: ignore[type-arg]
    cfg = write_config(tmp_path, latency, max_tokens)
    items = write_items(tmp_path / "in.jsonl", n)
    out = tmp_path / "out.jsonl"
    job = Job.from_file(cfg, system, "test", **options)  # type: ignore[arg-type]
    writer = Writer(out)
    try:
        outcome = asyncio.run(run_local(job, stream(items), writer, concurrency=concurrency))
    finally:
        writer.close()
    return outcome, records(out)


def test_every_item_once_with_the_answer_fields(tmp_path: Path) -> None:
    outcome, recs = _run(tmp_path, 50, trace=True)
    assert outcome.done == 50 and outcome.failed == 0 and outcome.stopped is None
    assert sorted(r["id"] for r in recs) == sorted(f"item-{i}" for i in range(50))
    r = recs[0]
    assert r["text"] == "ok" and r["model"] == "slow" and r["finish_reason"] == "stop"
    assert r["usage"] == {"input_tokens": 10, "output_tokens": 5}
    assert r["cost_usd"] == pytest.approx(0.015) and r["latency_s"] >= 0
    assert r["trace"]["kind"] == "model"
    assert outcome.cost_usd == pytest.approx(50 * 0.015)


def test_a_failed_item_is_recorded_and_the_run_goes_on(tmp_path: Path) -> None:
    outcome, recs = _run(tmp_path, 20, system="flaky", concurrency=1)
    failed = [r for r in recs if "error" in r]
    assert outcome.failed == len(failed) == 3 and outcome.done == 17
    assert failed[0]["error"]["kind"] == "server_error"
    assert "scripted server_error" in failed[0]["error"]["message"]
    assert "text" not in failed[0]


@pytest.mark.parametrize("concurrency", [1, 8])
def test_budget_stops_before_it_is_passed(tmp_path: Path, concurrency: int) -> None:
    # Each call reserves (its prompt + 20 output tokens) x $0.001, about $0.023, before
    # it is made, and costs $0.015. After 11 calls ($0.165) the next still fits; after
    # 12 ($0.18) it does not, whatever ran concurrently.
    outcome, recs = _run(tmp_path, 100, concurrency=concurrency, latency=0.01,
                         max_tokens=20, budget_usd=0.2)
    assert outcome.stopped is not None and "budget reached" in outcome.stopped
    spent = sum(r["cost_usd"] for r in recs)
    assert 0 < spent <= 0.2 and not any("error" in r for r in recs)
    assert len(recs) == outcome.done == 12 and spent == pytest.approx(0.18)


def test_budget_already_spent_runs_nothing(tmp_path: Path) -> None:
    outcome, recs = _run(tmp_path, 10, budget_usd=0.0)
    assert recs == [] and outcome.stopped is not None


def test_a_job_names_the_environment_it_reads(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("""\
models:
  remote: {provider: openai, model: m, base_url: "${BASE_URL}", api_key_env: MY_KEY}
  other: {provider: openai, model: m, base_url: "http://x/v1", api_key_env: NOT_USED}
systems:
  job: {kind: fallback, models: [remote]}
""")
    monkeypatch.setenv("BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("MY_KEY", "k")
    monkeypatch.setenv("NOT_USED", "n")
    env = Job.from_file(cfg, "job", "t").environment()
    assert env == {"BASE_URL": "http://127.0.0.1:9/v1", "MY_KEY": "k"}


def test_a_run_keeps_a_bounded_tally_of_its_error_messages() -> None:
    from chorus.batch.runner import MAX_MESSAGES, Outcome

    out = Outcome()
    for i in range(MAX_MESSAGES + 5):
        out.failure(f"id-{i}", f"boom {i}")
    out.failure("id-again", "boom 0")
    assert len(out.errors) == MAX_MESSAGES + 1
    assert out.errors["boom 0"] == [2, "id-0"]
    assert out.errors[""] == [5, f"id-{MAX_MESSAGES}"]
