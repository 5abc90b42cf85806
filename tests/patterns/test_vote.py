"""Vote over scripted children and over samples of one scripted model."""

from __future__ import annotations

import pytest

from chorus.config.builder import Config
from chorus.core.errors import AllModelsFailed, ConfigError, ServerError
from chorus.core.pricing import Price
from chorus.core.types import Request, Usage
from chorus.embeddings.local import MiniLMEmbedder
from chorus.patterns.vote import Vote
from chorus.providers.scripted import ScriptedModel
from tests.patterns._fakes import TableEmbedder

REQ = Request.of("Is this review positive or negative? 'Loved it.'")


def _m(name: str, reply: str, **kw: object) -> ScriptedModel:
    return ScriptedModel(name, default=reply, **kw)  # type: ignore[arg-type]


async def test_majority_of_extracted_labels() -> None:
    v = Vote("v", [_m("a", "Positive."), _m("b", "I'd say NEGATIVE"), _m("c", "positive!")],
             extract="label", labels=["positive", "negative"])
    out = await v.complete(REQ)
    assert out.text == "positive"
    assert out.model == "a"
    assert out.trace is not None
    tally = out.trace.attributes["tally"]
    assert tally["positive"]["models"] == ["a", "c"]
    assert tally["positive"]["count"] == 2
    assert tally["negative"] == {"count": 1, "weight": 1.0, "models": ["b"],
                                 "share": pytest.approx(1 / 3, abs=1e-3)}
    assert out.trace.attributes["tie"] == []
    assert [c.name for c in out.trace.children] == ["a", "b", "c"]


async def test_free_text_winner_is_returned_as_its_first_member_said_it() -> None:
    v = Vote("v", [_m("a", "London"), _m("b", " Paris. "), _m("c", "paris")])
    out = await v.complete(REQ)
    assert (out.text, out.model) == ("Paris.", "b")


async def test_usage_and_cost_cover_the_losers() -> None:
    price = Price(1_000_000, 0)  # one dollar per input token
    kids = [_m(n, r, usage=Usage(1, 1), price=price) for n, r in
            [("a", "yes"), ("b", "no"), ("c", "yes")]]
    out = await Vote("v", kids, extract="yes_no").complete(REQ)
    assert out.usage == Usage(3, 3)
    assert out.cost_usd == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("tie_break", "weights", "winner"),
    [("order", {}, "A"), ("weight", {"a": 0.5, "b": 2.0}, "B"), ("cheapest", {}, "B")],
)
async def test_ties_follow_the_chosen_rule(tie_break: str, weights: dict[str, float],
                                           winner: str) -> None:
    a = _m("a", "A", usage=Usage(10, 10), price=Price(3, 3))
    b = _m("b", "(B)", usage=Usage(10, 10), price=Price(1, 1))
    out = await Vote("v", [a, b], extract="choice", tie_break=tie_break,  # type: ignore[arg-type]
                     weights=weights).complete(REQ)
    assert out.text == winner
    assert out.trace is not None
    assert sorted(out.trace.attributes["tie"]) == ["A", "B"]
    assert out.trace.attributes["tie_break"] == tie_break


async def test_by_weight_lets_one_heavy_voter_outvote_two_light_ones() -> None:
    kids = [_m("strong", "(C)"), _m("w1", "The answer is (A)"), _m("w2", "A")]
    weights = {"strong": 2.5, "w1": 1.0, "w2": 1.0}
    counted = await Vote("v", kids, extract="choice", weights=weights).complete(REQ)
    assert counted.text == "A"  # by count, weights only break ties
    weighed = await Vote("v", kids, extract="choice", weights=weights,
                         by="weight").complete(REQ)
    assert (weighed.text, weighed.model) == ("C", "strong")
    assert weighed.trace is not None
    assert weighed.trace.attributes["by"] == "weight"
    assert weighed.trace.attributes["tally"]["A"]["weight"] == 2.0
    # Equal totals are a tie, broken by the tie_break rule (here: the earliest answer).
    weights["strong"] = 2.0
    tied = await Vote("v", kids, extract="choice", weights=weights, by="weight").complete(REQ)
    assert tied.text == "C"
    assert tied.trace is not None and sorted(tied.trace.attributes["tie"]) == ["A", "C"]


async def test_failed_children_are_recorded_and_excluded() -> None:
    kids = [_m("a", "no"), _m("b", "x", fail_with="server_error", fail_times=-1),
            _m("c", "no"), _m("d", "It depends")]
    out = await Vote("v", kids, extract="yes_no").complete(REQ)
    assert out.text == "no"
    assert out.trace is not None
    failed = out.trace.attributes["failed"]
    assert set(failed) == {"b", "d"}
    assert "server_error" in failed["b"]
    assert out.trace.attributes["votes"] == 2
    errors = [c for c in out.trace.children if c.error]
    assert [c.name for c in errors] == ["b"]


async def test_all_failing_raises_with_every_error_and_span() -> None:
    kids = [_m("a", "x", fail_with="server_error", fail_times=-1),
            _m("b", "x", fail_with="timeout", fail_times=-1)]
    with pytest.raises(AllModelsFailed) as info:
        await Vote("v", kids).complete(REQ)
    assert set(info.value.errors) == {"a", "b"}
    assert isinstance(info.value.errors["a"], ServerError)
    span = info.value.trace
    assert [c.name for c in span.children] == ["a", "b"]


async def test_samples_use_distinct_seeds_and_a_positive_temperature() -> None:
    m = ScriptedModel("m", replies=["7", "The answer is 8", "8", "x", "8.0"])
    v = Vote("v", model=m, samples=5, extract="number")
    out = await v.complete(REQ)
    assert out.text == "8"
    assert out.model == "m"
    assert [r.params.seed for r in m.calls] == [0, 1, 2, 3, 4]
    assert {r.params.temperature for r in m.calls} == {0.8}
    assert out.trace is not None
    assert out.trace.attributes["tally"]["8"]["models"] == ["m[1]", "m[2]", "m[4]"]
    assert out.trace.attributes["seeds"] == [0, 1, 2, 3, 4]
    assert list(out.trace.attributes["failed"]) == ["m[3]"]


async def test_samples_start_from_the_request_seed_and_keep_its_temperature() -> None:
    m = ScriptedModel("m", default="ok")
    await Vote("v", model=m, samples=3).complete(REQ.with_params(seed=10, temperature=0.3))
    assert [(r.params.seed, r.params.temperature) for r in m.calls] == [
        (10, 0.3), (11, 0.3), (12, 0.3)
    ]


async def test_by_meaning_returns_the_medoid_of_the_largest_group() -> None:
    emb = TableEmbedder({
        "Paris": [1.0, 0.0, 0.0],
        "It's Paris.": [0.95, 0.3, 0.0],
        "The capital of France is Paris": [0.95, -0.3, 0.0],
        "Lyon": [0.0, 0.0, 1.0],
    })
    kids = [_m("a", "Lyon"), _m("b", "It's Paris."), _m("c", "Paris"),
            _m("d", "The capital of France is Paris")]
    out = await Vote("v", kids, by_meaning=True, embedder=emb, similarity=0.8).complete(REQ)
    assert (out.text, out.model) == ("Paris", "c")
    assert out.trace is not None
    assert out.trace.attributes["tally"]["paris"]["models"] == ["b", "c", "d"]
    assert out.trace.attributes["by_meaning"] == {"embedder": "table", "similarity": 0.8}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "either models"),
        ({"models": [ScriptedModel("a", default="x")], "model": ScriptedModel("b")},
         "either models"),
        ({"model": ScriptedModel("a")}, "samples >= 2"),
        ({"model": ScriptedModel("a"), "samples": 3, "temperature": 0}, "temperature > 0"),
        ({"models": [ScriptedModel("a")], "samples": 3}, "samples applies"),
        ({"models": [ScriptedModel("a")], "by_meaning": True}, "embedder"),
        ({"models": [ScriptedModel("a")], "tie_break": "coin"}, "tie_break"),
        ({"models": [ScriptedModel("a")], "weights": {"z": 1.0}}, "unknown children"),
        ({"models": [ScriptedModel("a")], "weights": {"a": 0.0}}, "> 0"),
        ({"models": [ScriptedModel("a")], "by": "loudness"}, "by must be"),
        ({"models": [ScriptedModel("a"), ScriptedModel("a")]}, "distinct names"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Vote("v", **kwargs)  # type: ignore[arg-type]


YAML = """
models:
  a: {provider: scripted, default: "Positive"}
  b: {provider: scripted, default: "negative"}
  c: {provider: scripted, default: "positive."}
  s: {provider: scripted, replies: ["yes", "no", "yes"]}
systems:
  vote: {kind: vote, models: [a, b, c], extract: label, labels: [positive, negative],
         tie_break: order}
  vote_n: {kind: vote, model: s, samples: 3, extract: yes_no}
  loose: {kind: vote, models: [a, b], by_meaning: true, similarity: 0.7}
  heavy: {kind: vote, models: [a, b, c], extract: label, labels: [positive, negative],
          by: weight, weights: {a: 0.4, b: 1.0, c: 0.4}}
"""


async def test_yaml_builds_the_same_objects() -> None:
    cfg = Config.from_text(YAML)
    vote = cfg.get("vote")
    assert isinstance(vote, Vote)
    assert (await vote.complete(REQ)).text == "positive"
    vote_n = cfg.get("vote_n")
    assert isinstance(vote_n, Vote) and vote_n.samples == 3
    assert (await vote_n.complete(REQ)).text == "yes"
    loose = cfg.get("loose")
    assert isinstance(loose, Vote) and isinstance(loose.embedder, MiniLMEmbedder)
    heavy = cfg.get("heavy")
    assert isinstance(heavy, Vote) and heavy.by == "weight"
    assert (await heavy.complete(REQ)).text == "negative"


@pytest.mark.parametrize(
    ("system", "message"),
    [
        ("{kind: vote, models: [a], model: a}", "either models"),
        ("{kind: vote, models: [a], tie_break: coin}", "tie_break"),
        ("{kind: vote, models: [a], by: loudness}", "by"),
        ("{kind: vote, models: [a], weights: {zz: 1}}", "unknown children"),
        ("{kind: vote, models: [a], extract: label}", "labels"),
        ("{kind: vote, models: [a], quorum: 2}", "unknown key 'quorum'"),
    ],
)
def test_yaml_errors_point_at_the_system(system: str, message: str) -> None:
    cfg = Config.from_text(f"models:\n  a: {{provider: scripted, default: x}}\n"
                           f"systems:\n  v: {system}\n", "f.yaml")
    with pytest.raises(ConfigError, match=message) as info:
        cfg.get("v")
    assert info.value.line == 4


@pytest.mark.embeddings
async def test_real_minilm_vote_never_counts_yes_and_no_as_one() -> None:
    emb = MiniLMEmbedder()
    kids = [_m("y", "The answer is yes."), _m("n1", "The answer is no."), _m("n2", "No.")]
    out = await Vote("v", kids, by_meaning=True, embedder=emb).complete(
        Request.of("Is it raining?"))
    assert out.model in ("n1", "n2")
    assert out.trace is not None
    assert sorted(r["count"] for r in out.trace.attributes["tally"].values()) == [1, 2]
    # Short and long forms of one answer form one group; another city stays apart.
    kids = [_m("p1", "Paris"), _m("l", "Lyon"), _m("p2", "The capital of France is Paris.")]
    out = await Vote("v", kids, by_meaning=True, embedder=emb, similarity=0.75).complete(
        Request.of("What is the capital of France?"))
    assert out.model in ("p1", "p2")
    assert out.trace is not None
    assert [r["models"] for r in out.trace.attributes["tally"].values()] == [["p1", "p2"], ["l"]]
