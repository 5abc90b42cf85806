from __future__ import annotations

import pathlib

import pytest

from chorus.config import Config
from chorus.core.errors import ConfigError, RateLimitError, StepFailed
from chorus.core.pricing import Price
from chorus.core.types import Completion, Request, Span, TextDelta, Usage
from chorus.patterns.router import Route, Router
from chorus.providers.scripted import ScriptedModel
from chorus.routing import (
    EmbeddingClassifier,
    FunctionClassifier,
    KeywordClassifier,
    LatencyStats,
    LLMClassifier,
    Rule,
)

from ..routing._fakes import WordEmbedder

DOLLAR_A_TOKEN = Price(1_000_000.0, 1_000_000.0)


def models() -> tuple[ScriptedModel, ScriptedModel]:
    return (ScriptedModel("mathy", default="42", usage=Usage(4, 1), price=DOLLAR_A_TOKEN),
            ScriptedModel("chatty", default="hello", usage=Usage(2, 1), price=DOLLAR_A_TOKEN))


def keyword_router() -> tuple[Router, ScriptedModel, ScriptedModel]:
    mathy, chatty = models()
    clf = KeywordClassifier([Rule("code", regex=r"\bdef\b"),
                             Rule("math", keywords=["integral", "sum"])])
    return Router("r", clf, {"math": mathy, "code": mathy, "general": chatty},
                  default="general"), mathy, chatty


async def test_keyword_route_and_trace() -> None:
    r, mathy, chatty = keyword_router()
    c = await r.complete(Request.of("the Integral of x"))
    assert (c.text, c.model) == ("42", "mathy")
    assert len(mathy.calls) == 1 and not chatty.calls
    span = c.trace
    assert span is not None and span.kind == "router"
    assert span.attributes == {
        "classifier": "keyword", "label": "math", "confidence": 1.0, "route": "math",
        "reason": "rule 2 matched 'integral'", "model": "mathy",
        "selection": "mathy: the only candidate",
    }
    assert [s.name for s in span.children] == ["mathy"]
    assert c.cost_usd == pytest.approx(5.0)


async def test_a_router_streams_its_routes_answer_piece_by_piece() -> None:
    clf = KeywordClassifier([Rule("math", keywords=["sum"])])
    wordy = ScriptedModel("wordy", default="the sum is forty two", usage=Usage(3, 5))
    r = Router("r", clf, {"math": wordy, "general": ScriptedModel("g", default="hi")},
               default="general")
    events = [e async for e in r.stream(Request.of("the sum of 40 and 2"))]
    pieces, final = events[:-1], events[-1]
    assert [e.text for e in pieces if isinstance(e, TextDelta)] == [
        "the", " sum", " is", " forty", " two"]
    assert {e.model for e in pieces if isinstance(e, TextDelta)} == {"wordy"}
    assert isinstance(final, Completion) and final.text == "the sum is forty two"
    assert final.trace is not None and final.trace.attributes["route"] == "math"
    assert final.usage == Usage(3, 5)


async def test_no_rule_matched_takes_the_default() -> None:
    r, _, chatty = keyword_router()
    c = await r.complete(Request.of("hi there"))
    assert c.text == "hello" and len(chatty.calls) == 1
    assert c.trace is not None
    assert c.trace.attributes["reason"] == "no rule matched (of 2) → general"
    assert c.trace.attributes["label"] is None
    assert c.trace.attributes["route"] == "general"


async def test_llm_classifier_call_is_a_child_span_and_its_cost_counts() -> None:
    mathy, chatty = models()
    judge = ScriptedModel("judge", replies=["Label: math."], usage=Usage(30, 3),
                          price=DOLLAR_A_TOKEN)
    r = Router("r", LLMClassifier(judge, ["math", "general"]),
               {"math": mathy, "general": chatty}, default="general")
    c = await r.complete(Request.of("what is 6*7?"))
    assert c.text == "42"
    assert c.usage == Usage(34, 4)
    assert c.cost_usd == pytest.approx(38.0)
    assert c.trace is not None
    assert [s.name for s in c.trace.children] == ["judge", "mathy"]
    assert c.trace.attributes["reason"] == "judge answered 'Label: math.'"
    assert c.trace.attributes["classifier"] == "llm"
    # The route model gets the caller's request, not the classifier's.
    assert mathy.calls[0].prompt == "what is 6*7?"
    assert mathy.calls[0].params.response_format is None or \
        not mathy.calls[0].params.response_format


async def test_unknown_llm_label_takes_the_default_and_still_costs() -> None:
    mathy, chatty = models()
    judge = ScriptedModel("judge", replies=['{"label": "poetry"}'], usage=Usage(10, 2),
                          price=DOLLAR_A_TOKEN)
    r = Router("r", LLMClassifier(judge, ["math", "general"]),
               {"math": mathy, "general": chatty}, default="general")
    c = await r.complete(Request.of("a haiku"))
    assert c.text == "hello"
    assert c.cost_usd == pytest.approx(12 + 3)
    assert c.trace is not None
    assert c.trace.attributes["reason"] == (
        "judge answered 'poetry', not a known label → general")


async def test_a_failing_classifier_is_a_named_step_with_its_span() -> None:
    mathy, chatty = models()
    judge = ScriptedModel("judge", replies=[RateLimitError("slow", model="judge")])
    r = Router("r", LLMClassifier(judge, ["math", "general"]),
               {"math": mathy, "general": chatty}, default="general")
    with pytest.raises(StepFailed, match="r: step 'classifier' failed: model 'judge': slow"):
        await r.complete(Request.of("x"))
    assert not mathy.calls and not chatty.calls


async def test_a_failing_route_model_is_named_and_the_classifier_cost_kept() -> None:
    judge = ScriptedModel("judge", replies=['{"label": "math"}'], usage=Usage(10, 1),
                          price=DOLLAR_A_TOKEN)
    broken = ScriptedModel("broken", fail_with="server_error", fail_times=-1)
    stats = LatencyStats()
    r = Router("r", LLMClassifier(judge, ["math"]), {"math": broken}, default="math",
               stats=stats)
    with pytest.raises(StepFailed) as info:
        await r.complete(Request.of("x"))
    assert str(info.value).startswith("r: step \"route 'math' (broken)\" failed:")
    span = info.value.trace
    assert isinstance(span, Span)
    assert [(s.name, s.error is not None) for s in span.children] == [("judge", False),
                                                                       ("broken", True)]
    assert span.cost_usd == pytest.approx(11.0)
    assert span.attributes["model"] == "broken"
    assert stats.errors == {"broken": 1}  # type: ignore[attr-defined]


async def test_embedding_abstention_takes_the_default() -> None:
    mathy, chatty = models()
    clf = EmbeddingClassifier(WordEmbedder(["integral", "sum", "refund"]),
                              {"math": ["integral of x", "sum of numbers"]}, threshold=0.5)
    r = Router("r", clf, {"math": mathy, "general": chatty}, default="general")
    c = await r.complete(Request.of("integral please"))
    assert c.text == "42"
    assert c.trace is not None and c.trace.attributes["scores"]["math"] > 0.5
    c = await r.complete(Request.of("refund please"))
    assert c.text == "hello"
    assert c.trace is not None
    assert c.trace.attributes["reason"] == "math similarity 0.00 < threshold 0.5 → general"
    assert c.trace.attributes["confidence"] == 0.0


def confident(request: Request) -> tuple[str, float]:
    return ("math", 0.9) if "sure" in request.prompt else ("math", 0.2)


async def test_function_classifier_with_min_confidence() -> None:
    mathy, chatty = models()
    r = Router("r", FunctionClassifier(confident), {"math": mathy, "general": chatty},
               default="general", min_confidence=0.5)
    assert (await r.complete(Request.of("sure thing"))).text == "42"
    c = await r.complete(Request.of("maybe"))
    assert c.text == "hello"
    assert c.trace is not None
    assert "confidence 0.20 < 0.5 → general" in c.trace.attributes["reason"]


async def test_route_selects_by_capability_and_cost() -> None:
    cheap = ScriptedModel("cheap", default="c", capabilities=["chat"], price=Price(0.1, 0.1))
    pricey = ScriptedModel("pricey", default="p", capabilities=["chat", "code"],
                           price=Price(5, 5))
    free_no_chat = ScriptedModel("free", default="f", capabilities=["completion"])
    clf = FunctionClassifier(lambda r: r.prompt.split()[0])
    r = Router("r", clf, {
        "chat": Route(free_no_chat, pricey, cheap, select="cheapest", require=["chat"]),
        "code": Route(cheap, pricey, require=["code"]),
        "any": Route(pricey, free_no_chat, cheap, select="cheapest"),
    }, default="chat")
    assert (await r.complete(Request.of("chat hi"))).text == "c"
    c = await r.complete(Request.of("code hi"))
    assert c.text == "p"
    assert c.trace is not None
    assert c.trace.attributes["selection"] == "pricey: the only candidate with ['code']"
    assert (await r.complete(Request.of("any hi"))).text == "f"


async def test_route_selects_by_measured_latency() -> None:
    slow = ScriptedModel("slow", default="s", latency_s=0.03)
    fast = ScriptedModel("fast", default="f")
    stats = LatencyStats()
    r = Router("r", FunctionClassifier(lambda r: "x"),
               {"x": Route(slow, fast, select="fastest")}, default="x", stats=stats)
    answers = [(await r.complete(Request.of("q"))).text for _ in range(4)]
    assert answers == ["s", "f", "f", "f"]  # each measured once, then the faster one
    assert stats.calls == {"slow": 1, "fast": 3}
    slow_ema, fast_ema = stats.latency("slow"), stats.latency("fast")
    assert slow_ema is not None and fast_ema is not None and slow_ema > fast_ema


def test_routes_are_checked_when_built() -> None:
    mathy, chatty = models()
    clf = KeywordClassifier([Rule("math", keywords=["sum"])])
    with pytest.raises(ValueError, match="default route 'other' is not one of"):
        Router("r", clf, {"math": mathy}, default="other")
    with pytest.raises(ValueError, match="classifier label.*with no route: math"):
        Router("r", clf, {"general": chatty}, default="general")
    with pytest.raises(ValueError, match=r"no candidate \(mathy\) has all of \['code'\]"):
        Route(mathy, require=["code"])
    with pytest.raises(ValueError, match="select must be"):
        Route(mathy, select="random")  # type: ignore[arg-type]
    r = Router("r", clf, {"math": Route(mathy, chatty), "general": chatty}, default="general")
    assert r.children() == [mathy, chatty]


def classify_fn(request: Request) -> str:
    return "math" if "sum" in request.prompt else "general"


YAML = """
models:
  smol: {provider: scripted, default: "chat answer", capabilities: [chat]}
  big: {provider: scripted, default: "big answer", capabilities: [chat, math],
        price: {input: 3, output: 15}}
  judge: {provider: scripted, rules: {"sum": '{"label": "math"}'}, default: "general"}
systems:
  router:
    kind: router
    classifier: {type: llm, model: judge, labels: [math, sentiment, general]}
    routes: {math: big, sentiment: smol, general: smol}
    default: general
  router2:
    kind: router
    classifier: {type: embedding, examples: {billing: ["refund"], tech: ["crash"]},
                 threshold: 0.4}
    routes:
      billing: {candidates: [big, smol], select: cheapest, require: [chat]}
      tech: {provider: scripted, default: "inline tech"}
    default: tech
  router3:
    kind: router
    classifier:
      type: keyword
      rules:
        - {label: math, keywords: [integral]}
        - {label: code, regex: 'def \\w+'}
    routes: {math: big, code: big, general: smol}
    default: general
  router4:
    kind: router
    classifier: {type: function, function: "tests.patterns.test_router:classify_fn"}
    routes: {math: big, general: smol}
    default: general
    min_confidence: 0.5
"""


async def test_builds_every_classifier_type_from_yaml() -> None:
    cfg = Config.from_text(YAML)
    r = cfg.get("router")
    assert isinstance(r, Router)
    c = await r.complete(Request.of("the sum of 2 and 3"))
    assert c.text == "big answer"
    assert (await r.complete(Request.of("hello"))).text == "chat answer"
    r2 = cfg.get("router2")
    assert isinstance(r2, Router) and isinstance(r2.classifier, EmbeddingClassifier)
    r2.classifier.embedder = WordEmbedder(["refund", "crash"])
    assert (await r2.complete(Request.of("refund now"))).text == "chat answer"
    assert (await r2.complete(Request.of("hello"))).text == "inline tech"
    r3 = cfg.get("router3")
    assert (await r3.complete(Request.of("def f(): pass"))).text == "big answer"
    r4 = cfg.get("router4")
    assert (await r4.complete(Request.of("sum it"))).text == "big answer"
    assert cfg.check()


def test_llm_labels_default_to_the_routes() -> None:
    text = YAML.replace("labels: [math, sentiment, general]", "")
    r = Config.from_text(text).get("router")
    assert isinstance(r, Router) and isinstance(r.classifier, LLMClassifier)
    assert r.classifier.labels == ("math", "sentiment", "general")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("default: general\n  router2", "default: other\n  router2",
         r"systems\.router\.default: 'other' is not one of the routes"),
        ("labels: [math, sentiment, general]", "labels: [math, poetry]",
         r":10: systems\.router\.classifier: label\(s\) with no route: poetry"),
        ("type: llm", "type: magic", r"unknown classifier type 'magic'"),
        ("labels: [math, sentiment, general]", "label: [math]",
         r"systems\.router\.classifier\.label: unknown key 'label' \(did you mean 'labels'\?\)"),
        ("select: cheapest", "select: random",
         r"systems\.router2\.routes\.billing\.select"),
        ("require: [chat]", "require: [vision]",
         r"systems\.router2\.routes\.billing: no candidate \(big, smol\) has all"),
        ("regex: 'def \\w+'", "regex: '(def'",
         r"systems\.router3\.classifier\.rules\.1: .*invalid regex"),
        ("test_router:classify_fn", "test_router:nope",
         r"systems\.router4\.classifier\.function: .*has no attribute"),
        ("routes: {math: big, code: big, general: smol}", "routes: {math: big, general: smol}",
         r"label\(s\) with no route: code"),
        ("min_confidence: 0.5", "min_confidence: 2",
         r"systems\.router4\.min_confidence"),
    ],
)
def test_config_errors_say_where(old: str, new: str, message: str) -> None:
    assert old in YAML
    with pytest.raises(ConfigError, match=message):
        Config.from_text(YAML.replace(old, new)).check()


LOCAL_YAML = """
models:
  smollm2: {provider: local, model: smollm2-135m, params: {temperature: 0, max_tokens: 24, seed: 0}}
  gemma3: {provider: local, model: gemma3-270m, params: {temperature: 0, max_tokens: 16, seed: 0}}
systems:
  solve:
    kind: pipeline
    steps:
      - {model: gemma3, prompt: "Question: {input}\\nAnswer:", name: draft, parser: first_line}
      - {model: smollm2, prompt: "Question: {input}\\nDraft answer: {previous}\\nFinal answer:",
         name: polish}
  router:
    kind: router
    classifier: {type: llm, model: smollm2, labels: [math, general]}
    routes: {math: solve, general: solve}
    default: general
"""


@pytest.mark.local
async def test_router_and_pipeline_on_the_two_local_models() -> None:
    cfg = Config.from_text(LOCAL_YAML)
    for name in ("smollm2", "gemma3"):
        ok, why = cfg.get(name).usable()  # type: ignore[attr-defined]
        if not ok:
            pytest.skip(why)
    router = cfg.get("router")
    try:
        c = await router.complete(Request.of("What is 12 + 30?"))
    finally:
        await router.aclose()
    span = c.trace
    assert span is not None
    attrs = span.attributes
    # llama.cpp constrains the classifier to the schema: always a known label.
    assert attrs["label"] in ("math", "general") and attrs["route"] == attrs["label"]
    assert "not a known label" not in attrs["reason"]
    judge, solve = span.children
    assert judge.model == "smollm2" and judge.usage.output_tokens > 0
    assert solve.kind == "pipeline" and [s.model for s in solve.children] == ["gemma3",
                                                                              "smollm2"]
    steps = solve.attributes["steps"]
    assert [s["name"] for s in steps] == ["draft", "polish"]
    assert steps[0]["prompt"] == "Question: What is 12 + 30?\nAnswer:"
    assert steps[1]["prompt"].startswith("Question: What is 12 + 30?\nDraft answer: ")
    assert "\n" not in steps[1]["prompt"].split("Draft answer: ")[1].split("\nFinal")[0]
    assert c.model == "smollm2" and c.text.strip()
    leaves = [s for s in span.walk() if s.kind == "model"]
    assert c.usage == Usage.total(s.usage for s in leaves)
    assert 0 < c.usage.output_tokens <= 24 + 16 + 24
    assert c.cost_usd == 0.0


async def test_yaml_stats_key_shares_latency_through_a_store(tmp_path: pathlib.Path) -> None:
    """Two routers built from one config file's SQLite store see each other's latencies."""
    from chorus.policies.stats import StoreStats

    text = f"""
stores:
  shared: {{kind: sqlite, path: {tmp_path / "stats.db"}}}
models:
  slow: {{provider: scripted, default: slow, latency_s: 0.05}}
  fast: {{provider: scripted, default: fast}}
systems:
  r:
    kind: router
    classifier: {{type: keyword, rules: [{{label: general, keywords: [zzz]}}]}}
    routes: {{general: {{candidates: [slow, fast], select: fastest}}}}
    default: general
    stats: shared
"""
    router = Config.from_text(text, "stats.yaml").get("r")
    assert isinstance(router.stats, StoreStats)
    for _ in range(4):
        await router.complete(Request.of("hi"))
    await router.stats.flush()
    again = Config.from_text(text, "stats.yaml").get("r")
    assert isinstance(again.stats, StoreStats)
    # A fresh process knows nothing locally; its first look starts a read of the store.
    assert again.stats.latency("slow") is None and again.stats.latency("fast") is None
    await again.stats.flush()
    slow, fast = again.stats.latency("slow"), again.stats.latency("fast")
    assert slow is not None and fast is not None and fast < slow
    c = await again.complete(Request.of("hi"))
    assert c.text == "fast"
