"""The YAML of the built-in router classifiers (``classifier: {type: NAME, ...}``) and
how each is built; ``chorus.routing.register`` puts them in the registry, as a plugin
adds its own.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from chorus.config.schema import ModelRef, Node
from chorus.core.registry import BuildContext, Registry
from chorus.providers.function import import_callable
from chorus.routing._base import Classifier
from chorus.routing.embedding import EmbeddingClassifier
from chorus.routing.function import FunctionClassifier
from chorus.routing.intent import IntentClassifierConfig
from chorus.routing.intent import build_classifier as build_intent
from chorus.routing.keyword import KeywordClassifier, Rule, compile_rule
from chorus.routing.learned import LearnedClassifierConfig
from chorus.routing.learned import build_classifier as build_learned
from chorus.routing.llm import LLMClassifier

__all__ = [
    "EmbeddingClassifierConfig",
    "FunctionClassifierConfig",
    "KeywordClassifierConfig",
    "LLMClassifierConfig",
    "RuleConfig",
    "register",
]


class LLMClassifierConfig(Node):
    type: Literal["llm"]
    model: ModelRef
    #: The label set (default: the route names), or label -> description.
    labels: list[str] | dict[str, str] | None = None
    instructions: str | None = None
    max_tokens: int = Field(32, ge=1)


class EmbeddingClassifierConfig(Node):
    type: Literal["embedding"]
    examples: dict[str, list[str]]
    method: Literal["centroid", "knn"] = "centroid"
    k: int = Field(5, ge=1)
    #: Below this similarity the classifier abstains (the default route answers).
    threshold: float | None = Field(None, ge=-1, le=1)
    #: A name under ``embedders:`` or an inline embedder (default: the local MiniLM).
    embedder: str | dict[str, Any] | None = None


class RuleConfig(Node):
    label: str
    keywords: list[str] = Field(default_factory=list)
    regex: str | None = None


class KeywordClassifierConfig(Node):
    type: Literal["keyword", "regex"]
    rules: list[RuleConfig] = Field(min_length=1)
    case_sensitive: bool = False


class FunctionClassifierConfig(Node):
    type: Literal["function", "callable"]
    #: ``package.module:function``, called with the Request.
    function: str


def build_llm(cfg: LLMClassifierConfig, b: BuildContext, routes: list[str]) -> Classifier:
    return LLMClassifier(b.model(cfg.model, "model"),
                         cfg.labels if cfg.labels is not None else routes,
                         instructions=cfg.instructions, max_tokens=cfg.max_tokens)


def build_embedding(cfg: EmbeddingClassifierConfig, b: BuildContext,
                    routes: list[str]) -> Classifier:
    return EmbeddingClassifier(b.embedder(cfg.embedder, "embedder"), cfg.examples,
                               method=cfg.method, k=cfg.k, threshold=cfg.threshold)


def build_keyword(cfg: KeywordClassifierConfig, b: BuildContext,
                  routes: list[str]) -> Classifier:
    rules = [Rule(r.label, r.keywords, r.regex) for r in cfg.rules]
    for i, rule in enumerate(rules):
        try:
            compile_rule(rule, case_sensitive=cfg.case_sensitive)
        except ValueError as exc:
            raise b.error(str(exc), "rules", i) from None
    return KeywordClassifier(rules, case_sensitive=cfg.case_sensitive)


def build_function(cfg: FunctionClassifierConfig, b: BuildContext,
                   routes: list[str]) -> Classifier:
    try:
        fn = import_callable(cfg.function)
    except ValueError as exc:
        raise b.error(str(exc), "function") from None
    return FunctionClassifier(fn, name=cfg.function)


def _learned(cfg: LearnedClassifierConfig, b: BuildContext, routes: list[str]) -> Classifier:
    return build_learned(cfg, b)


def register(registry: Registry) -> None:
    """Register the built-in router classifiers (the ``chorus.plugins`` entry point)."""
    registry.classifier("llm", LLMClassifierConfig, build_llm, "a model picks the label")
    registry.classifier("embedding", EmbeddingClassifierConfig, build_embedding,
                        "nearest example utterances (centroid or k nearest)")
    for name in ("keyword", "regex"):
        registry.classifier(name, KeywordClassifierConfig, build_keyword,
                            "ordered keyword and regex rules")
    for name in ("function", "callable"):
        registry.classifier(name, FunctionClassifierConfig, build_function,
                            "a Python callable returns the label")
    registry.classifier("learned", LearnedClassifierConfig, _learned,
                        "a router fitted on outcome tables (chorus router fit)")
    registry.classifier("intent", IntentClassifierConfig, build_intent,
                        "a head trained on intent examples (chorus router fit --intents)")
