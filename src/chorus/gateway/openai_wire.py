"""OpenAI's Chat Completions and Embeddings JSON, to and from chorus types (no I/O).

Request bodies are pydantic models (they also give the OpenAPI document); responses are
plain dicts built on the hot path. ``error_response`` turns any chorus error into
OpenAI's error body ``{"error": {"message", "type", "param", "code"}}`` and a status.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chorus.core import errors as E
from chorus.core.types import Completion, Span, TokenLogprob, ToolCall, ToolCallDelta, Usage
from chorus.gateway.chat_request import ChatMessage, ChatRequest, to_request
from chorus.gateway.wire_error import WireError, validation_error

__all__ = [
    "ChatMessage",
    "ChatRequest",
    "EmbeddingsRequest",
    "WireError",
    "chat_body",
    "chunk_body",
    "decision_summary",
    "error_response",
    "internal_error",
    "logprobs_body",
    "models_answered",
    "to_request",
    "tool_calls_body",
    "usage_body",
    "validation_error",
]


class EmbeddingsRequest(BaseModel):
    """``POST /v1/embeddings``."""

    model_config = ConfigDict(extra="forbid", strict=True)
    model: str = Field(min_length=1, max_length=256)
    input: str | list[str] = Field(max_length=2048)
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1)
    user: str | None = None


# -- response bodies -----------------------------------------------------------------------


def usage_body(usage: Usage) -> dict[str, Any]:
    out: dict[str, Any] = {"prompt_tokens": usage.input_tokens,
                           "completion_tokens": usage.output_tokens,
                           "total_tokens": usage.total_tokens}
    if usage.cached_input_tokens:
        out["prompt_tokens_details"] = {"cached_tokens": usage.cached_input_tokens}
    return out


def _finish(reason: str | None) -> str:
    return reason if reason in ("stop", "length", "content_filter", "tool_calls") else "stop"


def tool_calls_body(calls: tuple[ToolCall, ...]) -> list[dict[str, Any]]:
    return [{"id": c.id, "type": "function",
             "function": {"name": c.name, "arguments": c.arguments}} for c in calls]


def _token(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}


def logprobs_body(logprobs: tuple[TokenLogprob, ...] | None) -> dict[str, Any] | None:
    """OpenAI's ``choices[].logprobs``: each token with its top alternatives."""
    if logprobs is None:
        return None
    return {"content": [{**_token(t.token, t.logprob),
                         "top_logprobs": [_token(a, lp) for a, lp in t.top]}
                        for t in logprobs], "refusal": None}


def chat_body(cid: str, created: int, model: str, answer: Completion,
              chorus: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.text}
    if answer.tool_calls:
        message["content"] = answer.text or None
        message["tool_calls"] = tool_calls_body(answer.tool_calls)
    return {
        "id": cid, "object": "chat.completion", "created": created, "model": model,
        "choices": [{"index": 0, "message": message,
                     "logprobs": logprobs_body(answer.logprobs),
                     "finish_reason": _finish(answer.finish_reason)}],
        "usage": usage_body(answer.usage),
        "chorus": chorus,
    }


def chunk_body(cid: str, created: int, model: str, *, text: str | None = None,
               role: bool = False, finish: str | None = None,
               usage: Usage | None = None, chorus: dict[str, Any] | None = None,
               include_usage: bool = False, tool_call: ToolCallDelta | None = None,
               logprobs: tuple[TokenLogprob, ...] | None = None) -> dict[str, Any]:
    """One ``chat.completion.chunk``: a delta (text, or a piece of a tool call), a
    finish, or (no choices) the usage."""
    out: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": created,
                           "model": model}
    if usage is not None:
        out["choices"] = []
        out["usage"] = usage_body(usage)
    else:
        delta: dict[str, Any] = {}
        if role:
            delta["role"] = "assistant"
        if text is not None:
            delta["content"] = text
        if tool_call is not None:
            piece: dict[str, Any] = {"index": tool_call.index}
            if tool_call.id is not None:
                piece["id"], piece["type"] = tool_call.id, "function"
            fn: dict[str, str] = {"arguments": tool_call.arguments}
            if tool_call.name is not None:
                fn["name"] = tool_call.name
            piece["function"] = fn
            delta["tool_calls"] = [piece]
        out["choices"] = [{"index": 0, "delta": delta, "logprobs": logprobs_body(logprobs),
                           "finish_reason": _finish(finish) if finish is not None else None}]
        if include_usage:
            out["usage"] = None
    if chorus is not None:
        out["chorus"] = chorus
    return out


def models_answered(trace: Span | None, fallback: str) -> list[str]:
    """The leaves that answered without an error, in call order (each once)."""
    if trace is None:
        return [fallback]
    if not trace.children:  # one model answered (the usual case: no walk needed)
        return [trace.name] if trace.kind == "model" and trace.error is None else [fallback]
    seen = dict.fromkeys(s.name for s in trace.walk() if s.kind == "model" and s.error is None)
    return list(seen) or [fallback]


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_short(v)}" for k, v in list(value.items())[:4]) + "}"
    if isinstance(value, list | tuple):
        more = "..." if len(value) > 4 else ""
        return "[" + ",".join(_short(v) for v in value[:4]) + more + "]"
    return str(value)


def decision_summary(span: Span | None, limit: int = 240) -> str:
    """The root span's kind, name and attributes squeezed into one ASCII header value."""
    if span is None:
        return ""
    attrs = " ".join([f"{k}={v if type(v) is str else _short(v)}"
                      for k, v in span.attributes.items() if k not in _UNSHOWN])
    text = f"{span.kind} {span.name}: {attrs}" if attrs else f"{span.kind} {span.name}"
    if not (text.isascii() and text.isprintable()) or "  " in text or text != text.strip():
        text = " ".join(text.split()).encode("ascii", "replace").decode("ascii")
    return text if len(text) <= limit else text[: limit - 3] + "..."


_UNSHOWN = frozenset({"model_id", "base_url"})


# -- errors --------------------------------------------------------------------------------

_PROVIDER_502: tuple[type[E.ProviderError], ...] = (
    E.ServerError, E.MalformedResponse, E.ProviderConnectionError, E.AuthenticationError,
    E.ModelNotFoundError,
)


def _retry_after(exc: E.ChorusError) -> dict[str, str]:
    after = getattr(exc, "retry_after", None)
    if isinstance(after, int | float) and math.isfinite(after) and after >= 0:
        return {"retry-after": str(max(1, math.ceil(after)))}
    return {}


def error_response(exc: E.ChorusError) -> WireError:
    """Status and OpenAI error body for a chorus error.

    Budgets: 429 with type ``insufficient_quota`` (what OpenAI sends when a quota is spent)
    and ``x-should-retry: false`` so the official SDKs do not retry it.
    """
    msg = str(exc)
    if isinstance(exc, E.StepFailed) and isinstance(exc.cause, E.ChorusError):
        inner = error_response(exc.cause)
        inner.message = msg
        return inner
    if isinstance(exc, E.AllModelsFailed):
        if exc.errors and all(isinstance(e, E.CapabilityMissing) for e in exc.errors.values()):
            return WireError(400, msg, code="capability_missing")
        errs = [e for e in exc.errors.values() if not isinstance(e, E.PatternError)]
        if errs and all(isinstance(e, E.ProviderTimeout | E.DeadlineExceeded) for e in errs):
            return WireError(504, msg, type="api_error", code="timeout")
        if errs and all(isinstance(e, E.RateLimitError) for e in errs):
            waits = [e.retry_after for e in errs if isinstance(e, E.RateLimitError)
                     and e.retry_after is not None]
            headers = {"retry-after": str(max(1, math.ceil(min(waits))))} if waits else {}
            return WireError(429, msg, type="rate_limit_error", code="rate_limit_exceeded",
                             headers=headers)
        return WireError(502, msg, type="api_error", code=exc.code)
    if isinstance(exc, E.BudgetExceeded):
        return WireError(429, msg, type="insufficient_quota", code="budget_exceeded",
                         headers={"x-should-retry": "false"})
    if isinstance(exc, E.RateLimitError):
        return WireError(429, msg, type="rate_limit_error", code="rate_limit_exceeded",
                         headers=_retry_after(exc))
    if isinstance(exc, E.GuardrailViolation):
        return WireError(400, msg, type="invalid_request_error", param=exc.stage,
                         code="guardrail_violation")
    if isinstance(exc, E.ContextLengthError):
        return WireError(400, msg, param="messages", code="context_length_exceeded")
    if isinstance(exc, E.CapabilityMissing):
        param = {"images": "messages", "json_schema": "response_format"}.get(
            min(exc.missing), min(exc.missing))
        return WireError(400, msg, param=param, code=exc.code)
    if isinstance(exc, E.BadRequestError | E.NotSupported):
        return WireError(400, msg, code=exc.code)
    if isinstance(exc, E.ProviderTimeout | E.DeadlineExceeded):
        return WireError(504, msg, type="api_error", code="timeout")
    if isinstance(exc, _PROVIDER_502) or isinstance(exc, E.ProviderError | E.PatternError):
        return WireError(502, msg, type="api_error", code=exc.code)
    if isinstance(exc, E.UnknownName):
        return WireError(404, msg, param="model", code="model_not_found")
    if isinstance(exc, E.StoreUnavailable | E.MissingDependency | E.Cancelled):
        return WireError(503, msg, type="api_error", code=exc.code)
    return WireError(500, msg, type="server_error", code=exc.code)


def internal_error(exc: BaseException, system: str = "") -> WireError:
    """The last resort: an error that is no chorus error (a bug, or a user function's own
    exception). A typed 500; what it was goes to the server log, never to the client."""
    where = f"{system!r}" if system else "the gateway"
    return WireError(500, f"{where} failed with an unexpected {type(exc).__name__} "
                          "(the server log has the details)",
                     type="server_error", code="internal_error")
