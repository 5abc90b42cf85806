"""What a cache keys on and what it stores, as plain functions (no I/O).

A key covers the inner model's identity (the name, kind, provider, model id and default
parameters of every model in its tree) and everything in the request that changes the
answer: messages and every parameter that was set. It is the SHA-256 of canonical JSON.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from chorus.core.model import Model
from chorus.core.types import (
    Completion,
    Message,
    Params,
    Request,
    Span,
    TokenLogprob,
    ToolCall,
    Usage,
)

__all__ = [
    "decode_entry",
    "deterministic",
    "encode_entry",
    "model_identity",
    "request_key",
    "span_from_dict",
]


def _plain(value: Any) -> Any:
    """``value`` as JSON-ready data (tuples as lists, mappings as dicts)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def _params(params: Params) -> dict[str, Any]:
    return {k: _plain(v) for k, v in params.given().items()}


def _canonical(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=repr)


def model_identity(model: Model) -> str:
    """Everything about ``model`` and the models below it that can change an answer, as
    canonical JSON (computed once per cache, not per request)."""
    return _canonical(_identity(model))


def _identity(model: Model) -> list[Any]:
    node: dict[str, Any] = {"class": type(model).__name__, "kind": model.kind,
                            "name": model.name}
    params = getattr(model, "params", None)
    if isinstance(params, Params):
        node["params"] = _params(params)
    for attr in ("provider", "model_id"):
        value = getattr(model, attr, None)
        if isinstance(value, str):
            node[attr] = value
    return [node, *(_identity(c) for c in model.children())]


def request_key(identity: str, request: Request, *, prompt: bool = True,
                scope: str = "") -> str:
    """The hex key of ``request`` to a model with ``identity``. With ``prompt=False`` the
    last user message is left out: the semantic cache's context key."""
    messages = [_message(m) for m in request.messages]
    if not prompt:
        last = max((i for i, m in enumerate(request.messages) if m.role == "user"), default=-1)
        messages = [m for i, m in enumerate(messages) if i != last]
    doc = {"model": identity, "messages": messages, "params": _params(request.params),
           "scope": scope}
    return hashlib.sha256(_canonical(doc).encode()).hexdigest()


def _message(m: Message) -> list[Any]:
    if not (m.parts or m.tool_calls or m.tool_call_id or m.name):
        return [m.role, m.content]
    return [m.role, m.content, _plain(m.parts), _plain(m.tool_calls), m.tool_call_id, m.name]


def _temperature(model: Model, request: Request) -> float | None:
    value = request.params.temperature
    if value is None or isinstance(value, float | int):
        return value
    defaults = getattr(model, "params", None)
    if isinstance(defaults, Params):
        found = defaults.temperature
        return found if found is None or isinstance(found, float | int) else None
    return None


def deterministic(model: Model, request: Request) -> bool:
    """Whether the answer is meant to repeat: temperature unset or 0 (the request's, else
    the inner model's default). Sampling above 0 is not cached unless asked for."""
    temperature = _temperature(model, request)
    return temperature is None or temperature <= 0


# -- entries ---------------------------------------------------------------------------


def span_from_dict(data: Mapping[str, Any]) -> Span:
    """The Span that ``Span.to_dict`` wrote."""
    usage = data.get("usage") or {}
    return Span(
        kind=str(data["kind"]), name=str(data["name"]), model=data.get("model"),
        usage=Usage(int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))),
        cost_usd=float(data.get("cost_usd", 0.0)), latency_s=float(data.get("latency_s", 0.0)),
        start=float(data.get("start", 0.0)), attributes=dict(data.get("attributes") or {}),
        children=[span_from_dict(c) for c in data.get("children") or []],
        error=data.get("error"),
    )


def encode_entry(completion: Completion, created: float, **extra: Any) -> bytes:
    """A Completion as stored JSON bytes, with when it was made and any ``extra`` fields."""
    doc = {"completion": completion.to_dict(trace=True), "logprob": completion.logprob,
           "created": created, **extra}
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False, default=repr).encode()


def decode_entry(raw: bytes | Mapping[str, Any], *, trace: bool = True
                 ) -> tuple[Completion, dict[str, Any]]:
    """The Completion stored by ``encode_entry`` (as bytes, or already parsed) and the whole
    stored document; ``trace=False`` skips rebuilding the stored trace (a hit does not use
    it). Raises ValueError when it is not an entry."""
    try:
        doc = dict(raw) if isinstance(raw, Mapping) else json.loads(raw)
        c = doc["completion"]
        usage = c.get("usage") or {}
        completion = Completion(
            text=str(c["text"]), model=str(c["model"]),
            usage=Usage(int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))),
            cost_usd=float(c.get("cost_usd", 0.0)), latency_s=float(c.get("latency_s", 0.0)),
            finish_reason=c.get("finish_reason"),
            trace=span_from_dict(c["trace"]) if trace and c.get("trace") else None,
            logprob=doc.get("logprob"),
            tool_calls=tuple(ToolCall(str(t["id"]), str(t["name"]), str(t["arguments"]))
                             for t in c.get("tool_calls") or ()),
            logprobs=(tuple(TokenLogprob.from_dict(t) for t in c["logprobs"])
                      if c.get("logprobs") is not None else None),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a cache entry: {exc}") from exc
    return completion, doc
