"""ReplayModel: answers as a recorded model did, from an outcome table.

    m = ReplayModel("gpt4", read_outcomes("test.jsonl"), model="gpt-4-1106-preview")

The item is found by the request's ``metadata["item_id"]`` (set by ``chorus bench``),
else by the exact text of the last user message. The answer carries the recorded cost
and output tokens, so any pattern built from replay models is evaluated at no inference
cost. A recorded model that gave no response answers with empty text; one that called
tools (``tool_calls`` in the table) answers with those calls and ``finish_reason:
"tool_calls"``, streamed as tool-call pieces, provided the request offers those tools.
A row answers every request with its prompt, so a test of a whole agent loop gives each
turn its own ``item_id``.

    models:
      gpt4: {provider: replay, outcomes: routellm_gsm8k.jsonl, model: gpt-4-1106-preview}
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from chorus.config.schema import ProviderConfig
from chorus.core.errors import BadRequestError
from chorus.core.registry import BuildContext, config_path
from chorus.core.types import Completion, ForcedTool, Request, ToolCall, Usage
from chorus.eval.outcomes import OutcomeItem, read_outcomes
from chorus.providers import Provider, common_kwargs

__all__ = ["ReplayModel", "ReplayConfig", "ReplayIndex", "build", "load_index"]

_CHARS_PER_TOKEN = 4


class ReplayIndex:
    """An outcome table indexed by item id and by prompt text."""

    def __init__(self, rows: Sequence[OutcomeItem], source: str | None = None) -> None:
        self.by_id = {r.id: r for r in rows}
        self.by_prompt = {r.prompt: r for r in rows}
        self.source = source

    def missing(self, request: Request) -> str:
        """Why ``find`` found nothing for ``request``."""
        where = f" in {self.source}" if self.source else ""
        item_id = request.metadata.get("item_id")
        if item_id is not None:
            return (f"no recorded outcome for this item_id or prompt{where} (the table "
                    f"has {len(self.by_id)} items; is this one of them?)")
        return (f"no recorded outcome for this prompt{where} (set metadata item_id or "
                "send the recorded prompt exactly)")

    def find(self, request: Request) -> OutcomeItem | None:
        item_id = request.metadata.get("item_id")
        if item_id is not None and str(item_id) in self.by_id:
            return self.by_id[str(item_id)]
        return self.by_prompt.get(request.prompt)


_indexes: dict[tuple[str, float], ReplayIndex] = {}
_lock = threading.Lock()


def load_index(path: str | Path) -> ReplayIndex:
    """The index of the table at ``path``, read once per process (and again if it changes)."""
    p = Path(path).resolve()
    key = (str(p), p.stat().st_mtime if p.exists() else 0.0)
    with _lock:
        if key not in _indexes:
            _indexes[key] = ReplayIndex(read_outcomes(p), str(path))
        return _indexes[key]


class ReplayModel(Provider):
    provider = "replay"

    def __init__(self, name: str, outcomes: Sequence[OutcomeItem] | ReplayIndex, *,
                 model: str | None = None, latency_s: float = 0.0, **kwargs: Any) -> None:
        kwargs.setdefault("local", True)
        super().__init__(name, **kwargs)
        self.index = outcomes if isinstance(outcomes, ReplayIndex) else ReplayIndex(outcomes)
        self.recorded = model or name
        self.latency_s = latency_s

    def _check_offered(self, request: Request, calls: Sequence[ToolCall], item: str) -> None:
        """A recorded call answers only a request that could have made it: one that
        offers the tool and lets the model call it (else the caller has no use for it)."""
        if not calls:
            return
        p = request.params
        offered = {t.name for t in p.tools} if isinstance(p.tools, tuple) else set()
        choice = p.tool_choice
        for call in calls:
            if call.name not in offered:
                raise BadRequestError(
                    f"item {item!r}: the recorded answer calls {call.name}, which this "
                    f"request does not offer (tools: {', '.join(sorted(offered)) or 'none'})",
                    model=self.name)
            forced = choice.name if isinstance(choice, ForcedTool) else None
            if choice == "none" or forced not in (None, call.name):
                shown = "none" if forced is None else f"forcing {forced}"
                raise BadRequestError(
                    f"item {item!r}: the recorded answer calls {call.name}, which "
                    f"tool_choice ({shown}) does not allow", model=self.name)

    async def complete(self, request: Request) -> Completion:
        started = time.perf_counter()
        self.check_accepts(request)
        row = self.index.find(request)
        if row is None:
            raise BadRequestError(self.index.missing(request), model=self.name)
        outcome = row.outcomes.get(self.recorded)
        if outcome is None:
            raise BadRequestError(f"item {row.id!r} has no outcome for {self.recorded!r}",
                                  model=self.name)
        self._check_offered(request, outcome.tool_calls, row.id)
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)
        text = outcome.response or ""
        usage = Usage(max(1, len(row.prompt) // _CHARS_PER_TOKEN),
                      outcome.output_tokens or 0)
        calls = outcome.tool_calls
        done = self.finish(text, usage, started, tool_calls=calls,
                           finish_reason="tool_calls" if calls else "stop", attributes={
                               "item_id": row.id, "recorded_model": self.recorded,
                               "recorded_score": outcome.score})
        # The recorded cost wins over the price table: it is what the call cost then.
        cost = outcome.cost_usd if outcome.cost_usd is not None else done.cost_usd
        if done.trace is not None:
            done.trace.cost_usd = cost
        return done.replace(cost_usd=cost)


class ReplayConfig(ProviderConfig):
    provider: Literal["replay"] = "replay"
    #: The outcome table (JSONL); a relative path is from the config file's folder.
    outcomes: str
    #: The recorded model to answer as (default: this model's name).
    model: str | None = None
    latency_s: float = Field(0.0, ge=0)


def build(cfg: ReplayConfig, b: BuildContext) -> ReplayModel:
    path = config_path(b, cfg.outcomes)
    if not path.is_file():
        raise b.error(f"outcome table {str(path)!r} does not exist", "outcomes")
    return ReplayModel(b.name, load_index(path), model=cfg.model, latency_s=cfg.latency_s,
                       **common_kwargs(cfg))
