"""Weighted: judge or function scores x weights, pooling, and learned weights."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from chorus.config.builder import Config
from chorus.core.errors import AllModelsFailed, ConfigError, StepFailed
from chorus.core.types import Request
from chorus.patterns._weights import hedge_update, load_weights, save_weights
from chorus.patterns.weighted import SCORE_SCHEMA, Weighted, judge_score
from chorus.providers.function import FunctionModel
from chorus.providers.scripted import ScriptedModel
from tests.patterns._fakes import TableEmbedder

REQ = Request.of("Name a prime number between 10 and 20.")


def _m(name: str, reply: str, **kw: object) -> ScriptedModel:
    return ScriptedModel(name, default=reply, **kw)  # type: ignore[arg-type]


def by_length(request: Request, answer: str) -> float:
    """A scorer for the YAML test: shorter is better."""
    return 10.0 / len(answer)


def _judge(scores: dict[str, str]) -> FunctionModel:
    """A judge that answers with the JSON (or text) given for the answer it sees."""

    def grade(request: Request) -> str:
        # The repair round trip repeats the prompt and appends to it.
        answer = request.prompt.split("Answer:\n", 1)[1].split("\n\n", 1)[0]
        return scores[answer]

    return FunctionModel("judge", grade, thread=False)


@pytest.mark.parametrize(
    ("value", "score"),
    [({"score": 7}, 7.0), ({"score": "8.5"}, 8.5), ({"score": 12}, 10.0),
     ({"score": -1}, 0.0), (6, 6.0)],
)
def test_judge_score(value: object, score: float) -> None:
    assert judge_score(value) == score


@pytest.mark.parametrize("value", [{"grade": 7}, {"score": "high"}, {"score": float("nan")},
                                   [7], None])
def test_judge_score_rejects(value: object) -> None:
    with pytest.raises(ValueError):
        judge_score(value)


async def test_judge_scores_times_weights_pick_the_winner() -> None:
    judge = _judge({"13": '{"score": 9}', "15": '```json\n{"score": 2}\n```',
                    "17": 'Sure! {"score": 8,}'})
    w = Weighted("w", [_m("a", "13"), _m("b", "15"), _m("c", "17")], judge=judge,
                 weights={"a": 0.5, "b": 1.0, "c": 1.0})
    out = await w.complete(REQ)
    assert (out.text, out.model) == ("17", "c")  # 8 x 1.0 beats 9 x 0.5
    assert out.trace is not None
    attrs = out.trace.attributes
    assert attrs["scores"]["a"] == {"score": 9.0, "weight": 0.5, "weighted": 4.5}
    assert attrs["scores"]["b"]["score"] == 2.0
    assert attrs["evaluator"] == "judge:judge"
    assert attrs["weights"] == {"a": 0.5, "b": 1.0, "c": 1.0}
    # Three answers and three judge calls, all in the trace.
    assert len(out.trace.children) == 6


async def test_the_judge_is_asked_with_the_score_schema_and_rubric() -> None:
    judge = ScriptedModel("judge", default='{"score": 5}')
    await Weighted("w", [_m("a", "13")], judge=judge, rubric="Is it prime?").complete(REQ)
    [ask] = judge.calls
    assert ask.params.response_format == SCORE_SCHEMA
    assert "Is it prime?" in (ask.system or "")
    assert "Name a prime number" in ask.prompt and ask.prompt.endswith("13")


async def test_equivalent_answers_pool_their_scores() -> None:
    def score(request: Request, answer: str) -> float:
        return {"13": 4.0, "Thirteen": 4.0, "17": 7.0}[answer]

    kids = [_m("a", "13"), _m("b", "17"), _m("c", "13.")]
    out = await Weighted("w", kids, scorer=score).complete(REQ)
    assert out.text == "13"  # 4 + 4 pooled beats 7
    assert out.trace is not None
    assert out.trace.attributes["pooled"]["13"] == {"score": 8.0, "models": ["a", "c"]}
    assert out.trace.attributes["evaluator"] == "scorer"
    # With an embedder, paraphrases pool too; the best-scored member speaks.
    emb = TableEmbedder({"13": [1.0, 0.0], "Thirteen": [0.98, 0.2], "17": [0.0, 1.0]})

    async def async_score(request: Request, answer: str) -> float:
        return {"13": 3.0, "Thirteen": 4.0, "17": 6.0}[answer]

    kids = [_m("a", "13"), _m("b", "17"), _m("c", "Thirteen")]
    out = await Weighted("w", kids, scorer=async_score, embedder=emb).complete(REQ)
    assert (out.text, out.model) == ("Thirteen", "c")
    exact = await Weighted("w", kids, scorer=async_score).complete(REQ)
    assert exact.text == "17"


async def test_identical_answers_are_judged_once() -> None:
    judge = ScriptedModel("judge", default='{"score": 5}')
    await Weighted("w", [_m("a", "13"), _m("b", "13!")], judge=judge).complete(REQ)
    assert len(judge.calls) == 1


async def test_unparseable_judge_answers_leave_that_answer_out() -> None:
    judge = _judge({"13": "no idea", "17": '{"score": 3}'})
    out = await Weighted("w", [_m("a", "13"), _m("b", "17")], judge=judge).complete(REQ)
    assert out.text == "17"
    assert out.trace is not None
    assert "judge" in out.trace.attributes["judge_failed"]["a"]
    judge_all_bad = _judge({"13": "no idea", "17": "nope"})
    with pytest.raises(StepFailed, match="judge"):
        await Weighted("w", [_m("a", "13"), _m("b", "17")], judge=judge_all_bad).complete(REQ)


async def test_failed_models_are_excluded_and_all_failed_raises() -> None:
    bad = _m("b", "x", fail_with="server_error", fail_times=-1)
    out = await Weighted("w", [_m("a", "13"), bad], scorer=by_length).complete(REQ)
    assert out.model == "a"
    assert out.trace is not None and list(out.trace.attributes["failed"]) == ["b"]
    with pytest.raises(AllModelsFailed):
        await Weighted("w", [bad], scorer=by_length).complete(REQ)


def test_hedge_update_rule() -> None:
    w = {"a": 1.0, "b": 1.0}
    up = hedge_update(w, "a", 1.0, eta=0.5)
    ratio = math.exp(0.25)
    assert up["a"] / up["b"] == pytest.approx(ratio)
    assert sum(up.values()) == pytest.approx(2.0)  # renormalised to the same total
    down = hedge_update(w, "a", 0.0, eta=0.5)
    assert down["b"] / down["a"] == pytest.approx(ratio)
    assert hedge_update(w, "a", 0.5) == pytest.approx(w)
    # Many losses shrink a weight toward, but never to, zero.
    for _ in range(5000):
        w = hedge_update(w, "a", 0.0, eta=2.0)
    assert 0 < w["a"] < 1e-6 and w["b"] == pytest.approx(2.0)
    assert hedge_update(w, "a", 1.0, eta=2.0)["a"] > w["a"]


@pytest.mark.parametrize(("model", "reward", "eta"), [("z", 0.5, 0.5), ("a", 1.5, 0.5),
                                                      ("a", -0.1, 0.5), ("a", 0.5, 0.0)])
def test_hedge_update_rejects(model: str, reward: float, eta: float) -> None:
    with pytest.raises(ValueError):
        hedge_update({"a": 1.0}, model, reward, eta)


def test_weights_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "weights.json"
    assert load_weights(path) is None
    save_weights(path, {"a": 1.25, "b": 0.75}, rule="hedge")
    assert load_weights(path) == {"a": 1.25, "b": 0.75}
    assert json.loads(path.read_text())["rule"] == "hedge"
    assert [p.name for p in path.parent.iterdir()] == ["weights.json"]  # no temp left
    path.write_text('{"weights": {"a": -1}}')
    with pytest.raises(ValueError, match="positive"):
        load_weights(path)
    path.write_text("{nope")
    with pytest.raises(ValueError, match="not JSON"):
        load_weights(path)


async def test_record_outcome_persists_and_a_rebuild_loads_it(tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    kids = [_m("a", "13"), _m("b", "17")]
    w = Weighted("w", kids, scorer=by_length, weights={"a": 1.0, "b": 1.0},
                 weights_file=path, eta=1.0)
    assert (await w.complete(REQ)).model == "a"  # tie: the first model
    for _ in range(3):
        w.record_outcome("b", 1.0)
    again = Weighted("w", kids, scorer=by_length, weights={"a": 1.0, "b": 1.0},
                     weights_file=path, eta=1.0)
    assert again.weights == pytest.approx(w.weights)
    assert again.weights["b"] / again.weights["a"] == pytest.approx(math.exp(3 * 0.5))
    out = await again.complete(REQ)
    assert out.model == "b"
    assert out.trace is not None
    assert out.trace.attributes["weights"]["b"] > out.trace.attributes["weights"]["a"]
    with pytest.raises(ValueError, match="reward"):
        again.record_outcome("a", 2.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one evaluator"),
        ({"scorer": by_length, "judge": ScriptedModel("j")}, "exactly one evaluator"),
        ({"scorer": by_length, "weights": {"z": 1.0}}, "unknown models"),
        ({"scorer": by_length, "weights": {"a": 0.0}}, "> 0"),
        ({"scorer": by_length, "eta": 0}, "eta"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Weighted("w", [ScriptedModel("a")], **kwargs)  # type: ignore[arg-type]


async def test_yaml(tmp_path: Path) -> None:
    config_file = tmp_path / "system.yaml"
    config_file.write_text(f"""
models:
  a: {{provider: scripted, default: "13"}}
  b: {{provider: scripted, default: "seventeen"}}
  c: {{provider: scripted, default: '{{"score": 6}}'}}
systems:
  weighted: {{kind: weighted, models: [a, b], judge: c, rubric: "Is it prime?",
             weights: {{a: 1.0, b: 0.5}}, weights_file: learned.json}}
  by_fn: {{kind: weighted, models: [a, b], scorer: "{__name__}:by_length"}}
""")
    cfg = Config.load(config_file)
    system = cfg.get("weighted")
    assert isinstance(system, Weighted)
    assert system.weights_file == tmp_path / "learned.json"
    assert (await system.complete(REQ)).model == "a"
    system.record_outcome("b", 1.0)
    assert (tmp_path / "learned.json").is_file()
    assert Config.load(config_file).get("weighted").weights == system.weights  # type: ignore[attr-defined]
    assert (await cfg.get("by_fn").complete(REQ)).text == "13"
    with pytest.raises(ConfigError, match="exactly one evaluator"):
        Config.from_text("models:\n  a: {provider: scripted, default: x}\nsystems:\n"
                         "  s: {kind: weighted, models: [a]}\n").get("s")


# -- end to end on the two bundled local models ------------------------------------------

LOCAL_YAML = """
models:
  smollm2: {provider: local, model: smollm2-135m, params: {temperature: 0, max_tokens: 16}}
  gemma3: {provider: local, model: gemma3-270m, params: {temperature: 0, max_tokens: 16}}
  judge: {provider: local, model: smollm2-135m, params: {temperature: 0, max_tokens: 16}}
systems:
  weighted: {kind: weighted, models: [smollm2, gemma3], judge: judge,
             rubric: "Does the answer name the capital of France?",
             weights: {smollm2: 1.0, gemma3: 0.5}}
"""


@pytest.mark.local
async def test_weighted_over_the_two_local_models_with_a_local_judge() -> None:
    config = Config.from_text(LOCAL_YAML)
    for name in ("smollm2", "gemma3"):
        ok, why = config.get(name).usable()  # type: ignore[attr-defined]
        if not ok:
            pytest.skip(why)
    out = await config.get("weighted").complete(Request.of("What is the capital of France?"))
    assert out.trace is not None
    attrs = out.trace.attributes
    answers = {s.model: s for s in out.trace.children if s.model in ("smollm2", "gemma3")}
    assert set(answers) == {"smollm2", "gemma3"}
    # The judge's constrained JSON parses: every answer has a score in range.
    assert "judge_failed" not in attrs
    for name, weight in (("smollm2", 1.0), ("gemma3", 0.5)):
        row = attrs["scores"][name]
        assert 0.0 <= row["score"] <= 10.0
        assert row["weighted"] == pytest.approx(row["score"] * weight, abs=1e-3)
    assert out.model in answers
    best = max(attrs["pooled"].values(), key=lambda p: p["score"])
    assert out.model in best["models"]
    judged = [s for s in out.trace.children if s.model == "judge"]
    assert 1 <= len(judged) <= 4
    assert out.usage.output_tokens == sum(s.usage.output_tokens for s in out.trace.children)
