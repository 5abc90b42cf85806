"""Guardrails: input checks, then the inner model, then output checks.

    Guardrails("safe", model, input=[SizeCheck(max_chars=8000), PIICheck(action="fix",
               restore=True), InjectionCheck()], output=[RefusalCheck()])

Order: checks run by cost tier, cheap first. Cheap checks (regex, heuristics) are pure
CPU and run inline one after another; embedding and model checks of the same tier run
concurrently. A ``fix`` check runs on its own so the checks after it see the fixed text
(so PII is redacted before a classifier model sees it). A ``block`` stops the stage at
once: checks still running are cancelled, later ones are skipped, and
GuardrailViolation (check, reason, span of text, stage) is raised with the wrapper's
span attached (``error.trace``, as on every chorus error). A ``reask``
from an output check asks the inner model again with the check's hint, at most
``max_repairs`` times, then raises.
Every check's outcome (what it checked, what it found, what it did) is in the span's
``checks`` attribute; model calls made by checks are child spans and their cost counts.

Streaming (``stream()``), by ``stream_mode``:

- ``buffer`` (default): nothing is sent until the whole answer passed every check; then
  it is sent in one piece. Repairs and restoring placeholders work as in ``complete``.
- ``window``: the answer is checked in windows of ``window_chars`` as it arrives; text
  that passed is sent, holding back the last ``overlap_chars`` so a match that crosses a
  window edge is seen whole before any of it is sent. Checks that need the whole answer
  (JSON schema, refusal, judge) run at the end. A violation ends the stream by raising
  GuardrailViolation after the text already sent: an explicit error, never a silent
  truncation. A reask cannot take back sent text, so in this mode it raises too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Literal

from chorus.core.compose import Relay, Wrapper, combine, open_stream
from chorus.core.errors import ChorusError, GuardrailViolation
from chorus.core.model import (
    Model,
    StreamEvent,
    call,
    deltas_of,
    error_span,
)
from chorus.core.types import (
    Completion,
    Message,
    Request,
    Span,
    TextDelta,
    ToolCall,
    ToolCallDelta,
)
from chorus.policies.guardrails._checks import (
    CHEAP,
    Check,
    Finding,
    Record,
    Subject,
    plan,
    recording,
)
from chorus.policies.guardrails.pii import restore as restore_text

__all__ = ["Guardrails", "Outcome", "StreamMode", "safe_cut"]

StreamMode = Literal["buffer", "window"]
_DID = {"block": "blocked", "fix": "fixed", "reask": "reask", "flag": "flagged"}


@dataclass(slots=True)
class Outcome:
    """One check's run: what it looked at, what it found, what it did."""

    check: Check
    checked: str
    finding: Finding | None = None
    record: Record = field(default_factory=Record)
    latency_s: float = 0.0
    did: str = "pass"
    round: int = 0

    def attributes(self) -> dict[str, Any]:
        f = self.finding
        out: dict[str, Any] = {
            "check": self.check.name, "stage": self.check.stage, "tier": self.check.tier,
            "action": self.check.action, "checked": self.checked,
            "found": f.reason if f else None, "did": self.did,
            "latency_ms": round(self.latency_s * 1000, 3), **self.record.notes,
        }
        if f is not None:
            out.update(f.details)
            if f.span is not None:
                out["span"] = list(f.span)
        if self.round:
            out["round"] = self.round
        return out


@dataclass(slots=True)
class _Result:
    subject: Subject
    blocked: Outcome | None = None
    reask: Outcome | None = None
    restore: dict[str, str] = field(default_factory=dict)


def safe_cut(text: str, cut: int) -> int:
    """``cut`` moved back so it does not split a placeholder like ``<EMAIL_1>``."""
    i = text.rfind("<", max(0, cut - 24), cut)
    return i if i != -1 and ">" not in text[i:cut] else cut


def violation(o: Outcome) -> GuardrailViolation:
    f = o.finding
    assert f is not None
    where = f.hits[0].message if f.hits else None
    reason = f.reason if where is None else f"{f.reason} (message {where})"
    return GuardrailViolation(o.check.name, reason, span=f.span, stage=o.check.stage)


class Guardrails(Wrapper):
    """Runs ``input`` checks, calls ``inner``, runs ``output`` checks."""

    kind = "guardrails"
    can_stream = True

    def __init__(self, name: str, inner: Model, *, input: Sequence[Check] = (),
                 output: Sequence[Check] = (), max_repairs: int = 1,
                 stream_mode: StreamMode = "buffer", window_chars: int = 256,
                 overlap_chars: int = 64) -> None:
        super().__init__(name, inner)
        if max_repairs < 0:
            raise ValueError("max_repairs must be >= 0")
        if window_chars < 1 or overlap_chars < 0:
            raise ValueError("window_chars must be >= 1 and overlap_chars >= 0")
        for c in input:
            if c.action == "reask":
                raise ValueError(f"check {c.name!r}: reask only applies to output checks")
            c.stage = "input"
        for c in output:
            c.stage = "output"
        for c in (*input, *output):
            c.bind(inner)
        self.input, self.output = list(input), list(output)
        self.max_repairs = max_repairs
        self.stream_mode, self.window_chars, self.overlap_chars = (
            stream_mode, window_chars, overlap_chars)
        self._plans = {"input": plan(self.input), "output": plan(self.output),
                       "window": plan([c for c in self.output if not c.needs_whole]),
                       "whole": plan([c for c in self.output if c.needs_whole])}

    # -- running checks ------------------------------------------------------------------

    async def _one(self, check: Check, subject: Subject, o: Outcome) -> Outcome:
        t0 = time.perf_counter()
        try:
            with recording(o.record):
                o.finding = await check.run(subject)
        finally:
            o.latency_s = time.perf_counter() - t0
        if o.finding is not None:
            o.did = _DID[check.action]
            if check.action == "fix" and o.finding.fixed is None:
                o.did = "blocked"  # found, but could not repair it
        return o

    async def _group(self, group: list[Check], subject: Subject, log: list[Outcome],
                     round_: int) -> Outcome | None:
        """Run one group; the first blocking outcome, if any."""
        outs = [Outcome(c, c.describe(subject), round=round_) for c in group]
        log.extend(outs)
        if group[0].tier == CHEAP or len(group) == 1:
            for i, o in enumerate(outs):
                await self._one(o.check, subject, o)
                if o.did == "blocked":
                    for rest in outs[i + 1:]:
                        rest.did = "skipped"
                    return o
            return None
        tasks = {asyncio.ensure_future(self._one(o.check, subject, o)): o for o in outs}
        pending = set(tasks)
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    o = t.result()
                    if o.did == "blocked":
                        return o
        finally:
            for t in pending:
                t.cancel()
                tasks[t].did = "cancelled"
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        return None

    async def _stage(self, which: str, subject: Subject, log: list[Outcome],
                     round_: int = 0) -> _Result:
        res = _Result(subject)
        groups = self._plans[which]
        for gi, group in enumerate(groups):
            blocked = await self._group(group, res.subject, log, round_)
            if blocked is not None:
                for later in groups[gi + 1:]:
                    log.extend(Outcome(c, "", did="skipped", round=round_) for c in later)
                res.blocked = blocked
                return res
            for o in log[-len(group):]:
                f = o.finding
                if f is None:
                    continue
                if o.did == "fixed" and f.fixed is not None:
                    res.subject = f.fixed
                    res.restore.update(f.restore)
                elif o.did == "reask" and res.reask is None:
                    res.reask = o
        return res

    # -- reporting ----------------------------------------------------------------------

    def _attributes(self, log: list[Outcome], **extra: Any) -> dict[str, Any]:
        def named(did: str) -> list[str]:
            return [o.check.name for o in log if o.did == did]
        blocked = named("blocked")
        return {"checks": [o.attributes() for o in log],
                "blocked": blocked[0] if blocked else None, "fixed": named("fixed"),
                "flagged": named("flagged"), **extra}

    def _calls(self, log: list[Outcome]) -> list[Completion]:
        return [c for o in log for c in o.record.calls]

    def _fail(self, exc: ChorusError, started: float, log: list[Outcome],
              parts: list[Completion], failed: list[Span], **extra: Any) -> ChorusError:
        """``exc`` with this wrapper's span attached, so a parent's trace keeps it."""
        all_parts = parts + self._calls(log)
        span = combine(self, "", started=started, parts=all_parts, failed=failed,
                       attributes=self._attributes(log, **extra)).trace
        assert span is not None
        span.error = str(exc)
        exc.trace = span
        return exc

    # -- the model ------------------------------------------------------------------------

    async def _call_inner(self, request: Request, parts: list[Completion],
                          failed: list[Span]) -> Completion:
        t0 = time.perf_counter()
        try:
            answer = await call(self.inner, request)
        except ChorusError as exc:
            failed.append(error_span(self.inner, exc, t0))
            raise
        parts.append(answer)
        return answer

    async def _check_calls(self, calls: tuple[ToolCall, ...], log: list[Outcome],
                           round_: int = 0) -> tuple[ToolCall, ...]:
        """The output checks on each tool call's arguments (PII in arguments, for one):
        a block or a reask raises, a fix rewrites the arguments."""
        out = []
        for c in calls:
            res = await self._stage("output", c.arguments, log, round_)
            stop = res.blocked or res.reask
            if stop is not None:
                raise violation(stop)
            assert isinstance(res.subject, str)
            out.append(ToolCall(c.id, c.name, res.subject) if res.subject != c.arguments
                       else c)
        return tuple(out)

    async def _guard_input(self, request: Request, log: list[Outcome]) -> _Result:
        res = await self._stage("input", request, log)
        if res.blocked is not None:
            raise violation(res.blocked)
        return res

    async def complete(self, request: Request) -> Completion:
        started = time.perf_counter()
        log: list[Outcome] = []
        parts: list[Completion] = []
        failed: list[Span] = []
        repairs = 0
        try:
            checked = await self._guard_input(request, log)
            req = checked.subject
            assert isinstance(req, Request)
            answer = await self._call_inner(req, parts, failed)
            while True:
                out = await self._stage("output", answer.text, log, repairs)
                if out.blocked is not None:
                    raise violation(out.blocked)
                if out.reask is None:
                    break
                if repairs >= self.max_repairs:
                    err = violation(out.reask)
                    err.add_note(f"still failing after {repairs} repair(s)")
                    raise err
                repairs += 1
                hint = out.reask.finding.hint if out.reask.finding else None
                req = Request(req.messages + (Message("assistant", answer.text),
                                              Message("user", hint or "Please answer again.")),
                              req.params, req.metadata)
                answer = await self._call_inner(req, parts, failed)
            calls = await self._check_calls(answer.tool_calls, log, repairs)
        except ChorusError as exc:
            raise self._fail(exc, started, log, parts, failed, repairs=repairs) from None
        assert isinstance(out.subject, str)
        text = restore_text(out.subject, checked.restore)
        done = combine(self, text, started=started, parts=parts + self._calls(log),
                       winner=answer, failed=failed, attributes=self._attributes(
                           log, repairs=repairs, restored=len(checked.restore)))
        return done if calls == answer.tool_calls else done.replace(tool_calls=calls)

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        if self.stream_mode == "buffer":
            answer = await self.complete(request)
            for ready in deltas_of(answer):
                yield ready
            yield answer
            return
        started = time.perf_counter()
        log: list[Outcome] = []
        parts: list[Completion] = []
        sent: list[str] = []
        calls: list[ToolCallDelta] = []  # held until the whole answer passed its checks
        raw, released, windows = "", 0, 0
        leaf = ""
        try:
            checked = await self._guard_input(request, log)
            req = checked.subject
            assert isinstance(req, Request)
            mapping = checked.restore
            # aclosing: a consumer that stops early closes the inner stream now.
            async with aclosing(open_stream(self.inner, req)) as events:
                relay = Relay(events, self.inner)
                async for event in relay:
                    if isinstance(event, ToolCallDelta):
                        calls.append(event)
                        continue
                    raw += event.text
                    leaf = event.model
                    while len(raw) - released >= self.window_chars + self.overlap_chars:
                        windows += 1
                        piece, released = await self._window(raw, released, log, windows,
                                                             last=False)
                        if piece:
                            sent.append(restore_text(piece, mapping))
                            yield TextDelta(sent[-1], leaf)
            final = relay.final
            parts.append(final)
            if released < len(raw) or not raw:
                windows += 1
                piece, released = await self._window(raw, released, log, windows, last=True)
                if piece:
                    sent.append(restore_text(piece, mapping))
                    yield TextDelta(sent[-1], leaf)
            whole = await self._stage("whole", raw, log)
            stop = whole.blocked or whole.reask
            if stop is not None:
                raise violation(stop)
            checked_calls = await self._check_calls(final.tool_calls, log)
        except ChorusError as exc:
            raise self._fail(exc, started, log, parts, [], windows=windows,
                             sent_chars=sum(map(len, sent))) from None
        if checked_calls == final.tool_calls:
            for held in calls:
                yield held
        else:  # rewritten by a fix: each call goes out whole
            for i, c in enumerate(checked_calls):
                yield ToolCallDelta(i, c.id, c.name, c.arguments)
            final = final.replace(tool_calls=checked_calls)
        yield combine(self, "".join(sent), started=started, parts=parts + self._calls(log),
                      winner=final, attributes=self._attributes(
                          log, stream_mode="window", windows=windows,
                          restored=len(mapping)))

    async def _window(self, raw: str, released: int, log: list[Outcome], n: int,
                      *, last: bool) -> tuple[str, int]:
        """Check ``raw[released:]``; the text to send and the new released offset."""
        text = raw[released:]
        mine: list[Outcome] = []
        res = await self._stage("window", text, mine)
        # Only windows that found something go in the trace (a long answer has many).
        log.extend(o for o in mine if o.finding is not None)
        if res.blocked is not None:
            res.blocked.checked = f"stream window {n}, {len(text)} chars"
            raise violation(res.blocked)
        fixed = res.subject
        assert isinstance(fixed, str)
        if last:
            return fixed, len(raw)
        if fixed != text:
            # A fix touched this window: its matches were seen whole, send all of it.
            return fixed, len(raw)
        cut = safe_cut(text, len(text) - self.overlap_chars)
        return text[:cut], released + cut
