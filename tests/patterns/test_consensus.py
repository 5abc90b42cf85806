"""Consensus: agreement reached, or escalation with the disagreement in the trace."""

from __future__ import annotations

import pytest

from chorus.config.builder import Config
from chorus.core.errors import ConfigError, StepFailed
from chorus.core.types import Request
from chorus.patterns.agreement import Answer, group_exact
from chorus.patterns.consensus import Consensus, agreement
from chorus.providers.scripted import ScriptedModel
from tests.patterns._fakes import TableEmbedder

REQ = Request.of("What is the capital of France?")


def _m(name: str, reply: str, **kw: object) -> ScriptedModel:
    return ScriptedModel(name, default=reply, **kw)  # type: ignore[arg-type]


def test_agreement_shares_count_every_model_asked() -> None:
    groups = group_exact([Answer(0, "a", "x", "x"), Answer(1, "b", "x", "x"),
                          Answer(2, "c", "y", "y")])
    winner, share = agreement(groups, asked=3, threshold=0.66)
    assert winner is not None and winner.key == "x"
    assert share == pytest.approx(2 / 3)
    assert agreement(groups, asked=3, threshold=0.67)[0] is None
    # A fourth model that failed makes 2 of 4: no longer two thirds.
    assert agreement(groups, asked=4, threshold=0.66)[0] is None
    assert agreement([], asked=3, threshold=0.5) == (None, 0.0)


async def test_consensus_reached_does_not_call_the_escalation_model() -> None:
    big = _m("big", "Paris, France")
    c = Consensus("c", [_m("a", "Paris"), _m("b", "paris."), _m("x", "Lyon")],
                  escalate_to=big, threshold=0.66)
    out = await c.complete(REQ)
    assert (out.text, out.model) == ("Paris", "a")
    assert big.calls == []
    assert out.trace is not None
    attrs = out.trace.attributes
    assert attrs["escalated"] is False
    assert attrs["winner"] == "paris"
    assert attrs["groups"]["paris"]["share"] == pytest.approx(0.6667, abs=1e-4)


async def test_disagreement_escalates_and_is_recorded() -> None:
    big = _m("big", "Paris")
    a, b = _m("a", "Paris"), _m("b", "Lyon")
    out = await Consensus("c", [a, b], escalate_to=big, threshold=0.66).complete(REQ)
    assert (out.text, out.model) == ("Paris", "big")
    assert len(big.calls) == 1
    assert out.trace is not None
    attrs = out.trace.attributes
    assert attrs["escalated"] is True
    assert attrs["escalated_to"] == "big"
    assert attrs["share"] == 0.5
    assert attrs["groups"] == {
        "paris": {"count": 1, "weight": 1.0, "models": ["a"], "share": 0.5},
        "lyon": {"count": 1, "weight": 1.0, "models": ["b"], "share": 0.5},
    }
    assert [s.name for s in out.trace.children] == ["a", "b", "big"]


async def test_failures_count_against_agreement() -> None:
    big = _m("big", "Paris")
    kids = [_m("a", "Paris"), _m("b", "x", fail_with="timeout", fail_times=-1)]
    out = await Consensus("c", kids, escalate_to=big, threshold=0.66).complete(REQ)
    assert out.model == "big"
    assert out.trace is not None
    assert list(out.trace.attributes["failed"]) == ["b"]
    assert [(s.name, s.error is not None) for s in out.trace.children] == [
        ("a", False), ("big", False), ("b", True)
    ]


async def test_all_failing_escalates() -> None:
    kids = [_m(n, "x", fail_with="server_error", fail_times=-1) for n in ("a", "b")]
    out = await Consensus("c", kids, escalate_to=_m("big", "Paris")).complete(REQ)
    assert out.text == "Paris"
    assert out.trace is not None and out.trace.attributes["share"] == 0.0


async def test_a_failed_escalation_keeps_every_span() -> None:
    big = _m("big", "x", fail_with="server_error", fail_times=-1)
    c = Consensus("c", [_m("a", "Paris"), _m("b", "Lyon")], escalate_to=big)
    with pytest.raises(StepFailed, match="escalate to big") as info:
        await c.complete(REQ)
    span = info.value.trace
    assert [(s.name, s.error is not None) for s in span.children] == [
        ("a", False), ("b", False), ("big", True)
    ]


async def test_by_meaning_agreement() -> None:
    emb = TableEmbedder({"Paris": [1.0, 0.0], "It is Paris.": [0.96, 0.28],
                         "Lyon": [0.0, 1.0]})
    big = _m("big", "?")
    kids = [_m("a", "It is Paris."), _m("b", "Paris"), _m("c", "Lyon")]
    out = await Consensus("c", kids, escalate_to=big, threshold=0.6, by_meaning=True,
                          embedder=emb).complete(REQ)
    assert out.text in {"Paris", "It is Paris."}
    assert out.model in {"a", "b"}
    assert big.calls == []
    exact = await Consensus("c", kids, escalate_to=big, threshold=0.6).complete(REQ)
    assert exact.model == "big"


async def test_extracted_labels_agree() -> None:
    kids = [_m("a", "Yes."), _m("b", "yes, it is"), _m("c", "No")]
    out = await Consensus("c", kids, escalate_to=_m("big", "?"), threshold=0.66,
                          extract="yes_no").complete(REQ)
    assert out.text == "yes"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"models": [ScriptedModel("a")]}, "at least two"),
        ({"threshold": 0}, "threshold"),
        ({"threshold": 1.5}, "threshold"),
        ({"by_meaning": True}, "embedder"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"models": [ScriptedModel("a"), ScriptedModel("b")],
                               "escalate_to": ScriptedModel("c"), **kwargs}
    with pytest.raises(ValueError, match=message):
        Consensus("c", **args)  # type: ignore[arg-type]


async def test_yaml() -> None:
    cfg = Config.from_text("""
models:
  a: {provider: scripted, default: "Paris"}
  b: {provider: scripted, default: "Lyon"}
  c: {provider: scripted, default: "Paris"}
systems:
  consensus: {kind: consensus, models: [a, b], threshold: 0.66, escalate_to: c,
              by_meaning: false}
""")
    system = cfg.get("consensus")
    assert isinstance(system, Consensus)
    out = await system.complete(REQ)
    assert out.model == "c"
    assert out.trace is not None and out.trace.attributes["escalated"] is True
    with pytest.raises(ConfigError, match="escalate_to"):
        Config.from_text("models:\n  a: {provider: scripted, default: x}\nsystems:\n"
                         "  s: {kind: consensus, models: [a, a]}\n").get("s")


@pytest.mark.embeddings
async def test_real_minilm_consensus_agrees_on_short_and_long_forms_only() -> None:
    from chorus.embeddings.local import MiniLMEmbedder

    big = ScriptedModel("big", default="escalated")
    emb = MiniLMEmbedder()
    agree = [ScriptedModel("a", default="Paris"),
             ScriptedModel("b", default="The capital of France is Paris.")]
    out = await Consensus("c", agree, escalate_to=big, by_meaning=True, embedder=emb,
                          similarity=0.8).complete(REQ)
    assert out.trace is not None and out.trace.attributes["escalated"] is False
    differ = [ScriptedModel("a", default="The review is positive."),
              ScriptedModel("b", default="The review is negative.")]
    out = await Consensus("c", differ, escalate_to=big, by_meaning=True, embedder=emb,
                          similarity=0.8).complete(Request.of("Is this review positive?"))
    assert out.text == "escalated"
