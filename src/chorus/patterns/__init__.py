"""Composite Models: the multi-model patterns.

    from chorus.patterns import Vote, Router, Cascade   # the same kinds as YAML's kind:

Classes are imported on first use, so ``import chorus`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chorus.core.registry import Registry

_CLASSES = {
    "Pipeline": "pipeline",
    "Router": "router",
    "FanOut": "fanout",
    "Vote": "vote",
    "Planner": "planner",
    "Supervisor": "supervisor",
    "Weighted": "weighted",
    "Consensus": "consensus",
    "Cascade": "cascade",
    "Fallback": "fallback",
}

__all__ = [*_CLASSES, "register"]


def __getattr__(name: str) -> Any:
    if name in _CLASSES:
        return getattr(importlib.import_module(f"chorus.patterns.{_CLASSES[name]}"), name)
    raise AttributeError(f"module 'chorus.patterns' has no attribute {name!r}")


def register(registry: Registry) -> None:
    """Register the built-in patterns (the ``chorus.plugins`` entry point)."""
    from chorus.patterns import consensus, vote, weighted

    registry.pattern("vote", vote.VoteConfig, vote.build,
                     "majority answer of several models, or of samples of one")
    registry.pattern("consensus", consensus.ConsensusConfig, consensus.build,
                     "accept the agreed answer, else escalate to a stronger model")
    registry.pattern("weighted", weighted.WeightedConfig, weighted.build,
                     "score every answer (judge or function) x model weight; best wins")
    # -- hierarchical: planner, supervisor --
    from chorus.patterns import planner, supervisor

    registry.pattern("planner", planner.PlannerConfig, planner.build,
                     "a planner splits the question into steps run as a DAG, then synthesises")
    registry.pattern("supervisor", supervisor.SupervisorConfig, supervisor.build,
                     "a supervisor assigns tasks to workers and reviews their result")
    # -- parallel and sequential: fanout, cascade, fallback --
    from chorus.patterns import cascade, fallback, fanout

    registry.pattern("fanout", fanout.FanOutConfig, fanout.build,
                     "every model at once: all answers, the first, or a quorum")
    registry.pattern("cascade", cascade.CascadeConfig, cascade.build,
                     "cheapest stage first; escalate while a confidence check says no")
    registry.pattern("fallback", fallback.FallbackConfig, fallback.build,
                     "models in order, moving on for chosen error types, with cooldowns")
    # -- sequential: pipeline, router --
    from chorus.patterns import pipeline, router

    registry.pattern("pipeline", pipeline.PipelineConfig, pipeline.build,
                     "steps in order; each prompt sees the input and the previous output")
    registry.pattern("router", router.RouterConfig, router.build,
                     "a classifier picks a route (label); the route's model answers")
