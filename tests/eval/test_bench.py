from __future__ import annotations

import io

from chorus.core.errors import ServerError
from chorus.eval.bench import Progress, run_bench, system_kind, to_outcomes
from chorus.eval.datasets import Item
from chorus.eval.outcomes import Outcome, OutcomeItem
from chorus.eval.replay import ReplayModel
from chorus.eval.scorers import make_scorer
from chorus.patterns.fallback import Fallback
from chorus.patterns.vote import Vote
from chorus.providers.scripted import ScriptedModel

ITEMS = [Item(str(i), f"what is {i}+{i}?", str(2 * i)) for i in range(6)]


async def test_scores_errors_calls_and_order() -> None:
    right = ScriptedModel("right", rules={rf"what is {i}\+": str(2 * i) for i in range(6)})
    flaky = ScriptedModel("flaky", replies=["0", ServerError("down", model="flaky")] * 3)
    vote = Vote("vote", [right, ScriptedModel("r2", rules={r"what is 1\+": "2"},
                                              default="7")])
    out = io.StringIO()
    progress = Progress(18, out, every_s=0)
    res = await run_bench({"right": right, "flaky": flaky, "vote": vote}, ITEMS,
                          make_scorer("numeric"), concurrency=3, progress=progress)
    assert [r.item_id for r in res["right"]] == [str(i) for i in range(6)]
    assert all(r.score == 1.0 and r.calls == 1 for r in res["right"])
    errors = [r for r in res["flaky"] if r.error is not None]
    assert len(errors) == 3 and all(r.score == 0.0 for r in errors)
    assert "down" in (errors[0].error or "")
    assert all(r.calls == 2 for r in res["vote"])
    assert progress.done == 18 and "18/18 done, 3 errors" in out.getvalue()


async def test_concurrency_is_bounded() -> None:
    running = {"now": 0, "max": 0}

    class Counting(ScriptedModel):
        async def complete(self, request):  # type: ignore[no-untyped-def]
            running["now"] += 1
            running["max"] = max(running["max"], running["now"])
            try:
                return await super().complete(request)
            finally:
                running["now"] -= 1

    m = Counting("c", default="1", latency_s=0.01)
    await run_bench({"c": m}, ITEMS * 1, make_scorer("exact"), concurrency=2)
    assert running["max"] == 2


def test_system_kinds() -> None:
    a, b = ScriptedModel("a", default="x"), ScriptedModel("b", default="y")
    assert system_kind(a) == "single"
    assert system_kind(Vote("v", [a, b])) == "parallel"
    assert system_kind(Fallback("f", [a, b])) == "sequential"


async def test_replay_bench_with_recorded_scores_and_record() -> None:
    rows = [OutcomeItem(str(i), f"q{i}", None, None,
                        {"m": Outcome(float(i % 2), 0.5, f"a{i}", 3)}) for i in range(4)]
    table = {r.id: r for r in rows}
    res = await run_bench({"replayed": ReplayModel("replayed", rows, model="m")},
                          [r.item() for r in rows], make_scorer("recorded", outcomes=table))
    assert [r.score for r in res["replayed"]] == [0.0, 1.0, 0.0, 1.0]
    assert sum(r.cost_usd for r in res["replayed"]) == 2.0
    recorded = to_outcomes([r.item() for r in rows], res)
    assert recorded[1].outcomes["replayed"] == Outcome(1.0, 0.5, "a1", 3)
