"""FanOut: ask every child at once and keep every answer, the first, or a quorum.

    fan = FanOut("fan", [small, medium, large], mode="quorum", quorum=2, combine="longest")
    result = await fan.run_all(request)     # every Outcome, successes and errors
    answer = await fan.complete(request)    # one combined Completion

``mode: all`` waits for every child; ``first`` returns the first success and cancels the
rest; ``quorum`` returns once ``quorum`` children succeeded and cancels the rest. The
wall time is that of the slowest child that was needed, not the sum.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from chorus.config.schema import ModelRef, PatternConfig
from chorus.core.compose import combine as combine_parts
from chorus.core.errors import AllModelsFailed, ChorusError, PatternError
from chorus.core.model import Model
from chorus.core.registry import BuildContext
from chorus.core.types import Completion, Request
from chorus.patterns._concurrent import Outcome, gather_until
from chorus.providers.function import import_callable

__all__ = [
    "FanOut",
    "FanOutConfig",
    "FanOutResult",
    "Mode",
    "Selector",
    "build",
    "concat",
    "needed",
    "select",
]

Mode = Literal["all", "first", "quorum"]
#: Picks one answer from the successful ones (in child order), or writes a new text.
Selector = Callable[[list[Completion]], "Completion | str"]
SELECTORS = ("longest", "shortest", "first")


@dataclass(frozen=True, slots=True)
class FanOutResult:
    """Every child's Outcome, in child order."""

    outcomes: tuple[Outcome, ...]
    mode: Mode

    @property
    def completions(self) -> list[Completion]:
        """The successful answers, in child order."""
        return [o.completion for o in self.outcomes if o.completion is not None]

    @property
    def errors(self) -> dict[str, ChorusError]:
        """The children that failed (not those cancelled), by name."""
        return {o.model.name: o.error for o in self.outcomes
                if o.error is not None and not o.cancelled}

    @property
    def answered(self) -> list[str]:
        return [o.model.name for o in self.outcomes if o.ok]

    @property
    def cancelled(self) -> list[str]:
        return [o.model.name for o in self.outcomes if o.cancelled]


# -- decisions (no I/O) ----------------------------------------------------------------


def needed(mode: Mode, total: int, quorum: int | None = None) -> int | None:
    """How many successes a fan-out waits for (None: every child, whatever they do)."""
    if mode == "all":
        return None
    if mode == "first":
        return 1
    if quorum is None or not 1 <= quorum <= total:
        raise ValueError(f"quorum must be between 1 and {total} (the number of models)")
    return quorum


def concat(answers: Sequence[tuple[str, str]]) -> str:
    """Each answer under its model's name, separated by blank lines."""
    return "\n\n".join(f"[{name}]\n{text.strip()}" for name, text in answers)


def select(completions: Sequence[Completion], how: str | Selector) -> Completion | str:
    """The answer ``how`` picks: longest, shortest, first (in child order), or a callable."""
    if not completions:
        raise ValueError("nothing to select from")
    if callable(how):
        return how(list(completions))
    if how == "first":
        return completions[0]
    if how == "longest":
        return max(completions, key=lambda c: len(c.text.strip()))  # max keeps the first tie
    if how == "shortest":
        return min(completions, key=lambda c: len(c.text.strip()))
    raise ValueError(f"combine must be concat, {', '.join(SELECTORS)} or 'module:function'")


def _timeouts(models: Sequence[Model], timeout_s: float | Mapping[str, float] | None,
              ) -> list[float | None]:
    if timeout_s is None or isinstance(timeout_s, int | float):
        return [timeout_s] * len(models)
    unknown = set(timeout_s) - {m.name for m in models}
    if unknown:
        raise ValueError(f"timeout_s names no model of this fan-out: {', '.join(sorted(unknown))}")
    return [timeout_s.get(m.name) for m in models]


# -- the pattern -------------------------------------------------------------------------


class FanOut(Model):
    """Call every child concurrently; combine the answers into one Completion."""

    kind = "fanout"
    family = "parallel"

    def __init__(
        self,
        name: str,
        models: Sequence[Model],
        *,
        mode: Mode = "all",
        quorum: int | None = None,
        combine: str | Selector = "concat",
        timeout_s: float | Mapping[str, float] | None = None,
    ) -> None:
        super().__init__(name)
        if not models:
            raise ValueError("a fan-out needs at least one model")
        if quorum is not None and mode != "quorum":
            raise ValueError("quorum is only used with mode: quorum")
        self.models = list(models)
        self.mode = mode
        self.quorum = quorum
        self.need = needed(mode, len(self.models), quorum)
        if isinstance(combine, str) and combine != "concat" and combine not in SELECTORS:
            if ":" not in combine:
                raise ValueError(f"combine must be concat, {', '.join(SELECTORS)} or "
                                 f"'package.module:function', got {combine!r}")
            combine = import_callable(combine)
        self.combine = combine
        self.timeouts = _timeouts(self.models, timeout_s)

    def children(self) -> Sequence[Model]:
        return tuple(self.models)

    async def run_all(self, request: Request) -> FanOutResult:
        """Every child's Outcome (the mode decides how many are awaited); never raises
        for a child's failure."""
        outcomes = await gather_until(self.models, request, need=self.need,
                                      timeouts=self.timeouts)
        return FanOutResult(tuple(outcomes), self.mode)

    async def complete(self, request: Request) -> Completion:
        started = time.perf_counter()
        result = await self.run_all(request)
        ok = [o for o in result.outcomes if o.completion is not None]
        attributes: dict[str, Any] = {
            "mode": self.mode,
            "answered": result.answered,
            "failed": {name: str(err) for name, err in result.errors.items()},
            "cancelled": result.cancelled,
        }
        if self.quorum is not None:
            attributes["quorum"] = self.quorum
        failed_spans = [o.span for o in result.outcomes if not o.ok]
        parts = result.completions
        if not ok:
            raise AllModelsFailed(self.name, {o.model.name: o.error for o in result.outcomes
                                              if o.error is not None})
        if self.need is not None and len(ok) < self.need:
            raise PatternError(
                f"{self.name}: quorum of {self.need} not reached ({len(ok)} answered; "
                + "; ".join(f"{n}: {e}" for n, e in result.errors.items()) + ")"
            )
        if self.mode == "first":
            winner = ok[0].completion
            assert winner is not None
            return combine_parts(self, winner.text, started=started, parts=parts, winner=winner,
                                 failed=failed_spans,
                                 attributes={**attributes, "chosen": ok[0].model.name})
        if self.combine == "concat":
            attributes["combine"] = "concat"
            text = concat([(o.model.name, c.text) for o in ok if (c := o.completion)])
            # The text is several leaves' work, so the pattern answers in its own name.
            return combine_parts(self, text, started=started, parts=parts,
                                 failed=failed_spans, attributes=attributes, model=self.name)
        chosen = select(parts, self.combine)
        attributes["combine"] = self.combine if isinstance(self.combine, str) else getattr(
            self.combine, "__name__", "callable")
        if isinstance(chosen, str):
            return combine_parts(self, chosen, started=started, parts=parts,
                                 failed=failed_spans, attributes=attributes, model=self.name)
        names = [o.model.name for o in ok if o.completion is chosen]
        attributes["chosen"] = names[0] if names else chosen.model
        return combine_parts(self, chosen.text, started=started, parts=parts, winner=chosen,
                             failed=failed_spans, attributes=attributes)


# -- YAML --------------------------------------------------------------------------------


class FanOutConfig(PatternConfig):
    kind: Literal["fanout"] = "fanout"
    models: list[ModelRef] = Field(min_length=1)
    mode: Mode = "all"
    #: With ``mode: quorum``: how many successful answers are enough.
    quorum: int | None = Field(None, ge=1)
    #: concat, longest, shortest, first, or ``package.module:function``.
    combine: str = "concat"
    #: Seconds each child may take: one number for all, or by model name.
    timeout_s: float | dict[str, float] | None = None


def build(cfg: FanOutConfig, b: BuildContext) -> FanOut:
    models = [b.model(ref, "models", i) for i, ref in enumerate(cfg.models)]
    return FanOut(b.name, models, mode=cfg.mode, quorum=cfg.quorum, combine=cfg.combine,
                  timeout_s=cfg.timeout_s)
