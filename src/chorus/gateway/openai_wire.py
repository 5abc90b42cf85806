"""OpenAI's Chat Completions and Embeddings JSON, to and from chorus types (no I/O).

Request bodies are pydantic models (they also give the OpenAPI document); responses are
plain dicts built on the hot path. ``error_response`` turns any chorus error into
OpenAI's error body ``{"error": {"message", "type", "param", "code"}}`` and a status.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chorus.core import errors as E
from chorus.core.types import Completion, Message, Params, Request, Span, Usage

__all__ = [
    "ChatMessage",
    "ChatRequest",
    "EmbeddingsRequest",
    "WireError",
    "chat_body",
    "chunk_body",
    "decision_summary",
    "error_response",
    "models_answered",
    "to_request",
    "usage_body",
    "validation_error",
]


class WireError(Exception):
    """An error the gateway itself raises, already in OpenAI's terms."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type = status, message, type
        self.param, self.code = param, code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param,
                          "code": self.code}}


# -- request bodies ------------------------------------------------------------------------


class _Wire(BaseModel):
    # OpenAI clients send fields chorus does not use (frequency_penalty, user ...): ignore.
    model_config = ConfigDict(extra="ignore")


class TextPart(_Wire):
    type: Literal["text"]
    text: str = Field(max_length=1_000_000)


class ChatMessage(_Wire):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None


class JsonSchemaFormat(_Wire):
    name: str = Field("answer", max_length=64)
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Wire):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class StreamOptions(_Wire):
    include_usage: bool = False


class ChorusOptions(_Wire):
    #: Return the whole trace (every model call, each pattern's decision) in ``chorus``.
    trace: bool = False


class ChatRequest(_Wire):
    """``POST /v1/chat/completions``."""

    model: str = Field(min_length=1, max_length=256)
    messages: list[ChatMessage] = Field(min_length=1, max_length=4096)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    max_tokens: int | None = Field(None, ge=1, le=1_000_000)
    max_completion_tokens: int | None = Field(None, ge=1, le=1_000_000)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1)
    n: int | None = Field(None, ge=1, le=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    response_format: ResponseFormat | None = None
    chorus: ChorusOptions | None = None


class EmbeddingsRequest(_Wire):
    """``POST /v1/embeddings``."""

    model: str = Field(min_length=1, max_length=256)
    input: str | list[str] = Field(max_length=2048)
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1)


def validation_error(exc: ValidationError) -> WireError:
    """pydantic's first complaint as a 400 naming the field."""
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    # Drop the union-branch names pydantic puts in the location ("str", "list[...]").
    param = ".".join(p for p in loc if not p.startswith(("str", "list[", "function-"))) or None
    return WireError(400, f"{param + ': ' if param else ''}{err['msg']}", param=param,
                     code="invalid_value" if err["type"] != "missing" else "missing_field")


def _content(m: ChatMessage) -> str:
    if m.content is None:
        return ""
    if isinstance(m.content, str):
        return m.content
    return "".join(p.text for p in m.content)


def _stop(stop: str | list[str] | None) -> tuple[str, ...] | None:
    if stop is None:
        return None
    stops = (stop,) if isinstance(stop, str) else tuple(stop)
    if len(stops) > 4:
        raise WireError(400, "stop: at most 4 sequences", param="stop", code="invalid_value")
    return stops or None


def _schema(fmt: ResponseFormat | None) -> dict[str, Any] | None:
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return {"type": "object"}
    if fmt.json_schema is None:
        raise WireError(400, "response_format.json_schema is required for type json_schema",
                        param="response_format.json_schema", code="missing_field")
    schema = dict(fmt.json_schema.schema_)
    schema.setdefault("title", fmt.json_schema.name)
    return schema


def to_request(body: ChatRequest, metadata: Mapping[str, Any]) -> Request:
    """The chorus Request for a chat completions body (only the parameters it gives)."""
    messages = tuple(
        Message("system" if m.role == "developer" else m.role, _content(m))
        for m in body.messages
    )
    given: dict[str, Any] = {}
    if body.temperature is not None:
        given["temperature"] = body.temperature
    if body.top_p is not None:
        given["top_p"] = body.top_p
    max_tokens = body.max_completion_tokens or body.max_tokens
    if max_tokens is not None:
        given["max_tokens"] = max_tokens
    stop = _stop(body.stop)
    if stop is not None:
        given["stop"] = stop
    if body.seed is not None:
        given["seed"] = body.seed
    schema = _schema(body.response_format)
    if schema is not None:
        given["response_format"] = schema
    return Request(messages, Params(**given) if given else Params(), metadata)


# -- response bodies -----------------------------------------------------------------------


def usage_body(usage: Usage) -> dict[str, int]:
    return {"prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens}


def _finish(reason: str | None) -> str:
    return reason if reason in ("stop", "length", "content_filter", "tool_calls") else "stop"


def chat_body(cid: str, created: int, model: str, answer: Completion,
              chorus: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": cid, "object": "chat.completion", "created": created, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text},
                     "logprobs": None, "finish_reason": _finish(answer.finish_reason)}],
        "usage": usage_body(answer.usage),
        "chorus": chorus,
    }


def chunk_body(cid: str, created: int, model: str, *, text: str | None = None,
               role: bool = False, finish: str | None = None,
               usage: Usage | None = None, chorus: dict[str, Any] | None = None,
               include_usage: bool = False) -> dict[str, Any]:
    """One ``chat.completion.chunk``: a delta, a finish, or (no choices) the usage."""
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
        out["choices"] = [{"index": 0, "delta": delta, "logprobs": None,
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
