"""Turning a chorus span into OpenTelemetry attributes: plain functions, no OpenTelemetry
import, tested on their own.

A model call gets the GenAI semantic conventions (``gen_ai.*``); every span gets
``chorus.*`` (kind, name, cost, tokens); a pattern's or policy's decision (its span's
``attributes``) lands under ``chorus.<kind>.<key>``. docs/telemetry.md lists every name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from chorus.core.errors import ChorusError
from chorus.core.model import Leaf
from chorus.core.types import Completion, Message, Params, Request, Span

__all__ = [
    "content_attributes",
    "decision_attributes",
    "failure_attributes",
    "model_request_attributes",
    "model_response_attributes",
    "span_name",
    "to_value",
]

# The request parameters the GenAI conventions name, by chorus's name.
_PARAMS = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "max_tokens": "gen_ai.request.max_tokens",
    "seed": "gen_ai.request.seed",
    "stop": "gen_ai.request.stop_sequences",
}
# A leaf span's own attributes that the conventions already carry (under gen_ai.*).
_LEAF_KNOWN = frozenset({"provider", "model_id", "finish_reason", "base_url"})
# OpenInference's span kinds, which Phoenix draws (an LLM call, a chain of steps).
_OI_KIND = "openinference.span.kind"

Value = str | bool | int | float | list[str] | list[bool] | list[int] | list[float]


def to_value(value: Any) -> Value | None:
    """An attribute value OpenTelemetry takes: scalars and flat lists of one scalar type
    as they are, anything else as JSON. None stays None (the attribute is left out)."""
    if value is None:
        return None
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple) and value:
        kinds = {type(v) for v in value}
        if len(kinds) == 1 and kinds <= {str, bool, int, float}:
            return list(value)
    return json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))


def operation(model: Any) -> str:
    """``gen_ai.operation.name``: a chat, or a plain text completion (a base model)."""
    return "text_completion" if getattr(model, "mode", None) == "completion" else "chat"


def span_name(model: Any) -> str:
    """``chat gpt-4o-mini`` for a model call (the conventions' form), ``router triage``
    for a pattern or policy."""
    if isinstance(model, Leaf):
        return f"{operation(model)} {getattr(model, 'model_id', model.name)}"
    return f"{model.kind} {model.name}"


def model_request_attributes(model: Any, request: Request, system: str) -> dict[str, Value]:
    """What a model call's span knows before the call: the model and the parameters."""
    out: dict[str, Value] = {
        "gen_ai.operation.name": operation(model),
        "gen_ai.provider.name": str(getattr(model, "provider", "chorus")),
        "gen_ai.request.model": str(getattr(model, "model_id", model.name)),
        "chorus.kind": "model",
        "chorus.name": model.name,
        "chorus.system": system,
        _OI_KIND: "LLM",
    }
    params = request.params
    defaults = getattr(model, "params", None)
    if isinstance(defaults, Params):  # a provider's own defaults fill the unset ones
        params = params.over(defaults)
    for name, value in params.given().items():
        key = _PARAMS.get(name)
        if key is not None and value is not None:
            out[key] = list(value) if name == "stop" else value
    base_url = getattr(model, "base_url", None)
    if isinstance(base_url, str):
        host, _, port = base_url.split("://", 1)[-1].split("/", 1)[0].rpartition(":")
        if host and port.isdigit():
            out["server.address"], out["server.port"] = host, int(port)
        else:
            out["server.address"] = port or host
    return out


def pattern_request_attributes(model: Any, system: str) -> dict[str, Value]:
    return {"chorus.kind": model.kind, "chorus.name": model.name, "chorus.system": system,
            _OI_KIND: "CHAIN"}


def model_response_attributes(model: Any, answer: Completion) -> dict[str, Value]:
    """What a model call's span learns from the answer: usage, cost, finish reason."""
    span = answer.trace
    out: dict[str, Value] = {
        "gen_ai.response.model": str(getattr(model, "model_id", answer.model)),
        "gen_ai.usage.input_tokens": answer.usage.input_tokens,
        "gen_ai.usage.output_tokens": answer.usage.output_tokens,
        "chorus.cost_usd": answer.cost_usd,
        "chorus.model": answer.model,
        "llm.token_count.prompt": answer.usage.input_tokens,
        "llm.token_count.completion": answer.usage.output_tokens,
    }
    if answer.finish_reason is not None:
        out["gen_ai.response.finish_reasons"] = [answer.finish_reason]
    if span is not None:
        for key, value in span.attributes.items():
            if key not in _LEAF_KNOWN:
                v = to_value(value)
                if v is not None:
                    out[f"chorus.model.{key}"] = v
    return out


def decision_attributes(span: Span) -> dict[str, Value]:
    """A pattern's or policy's span: what it cost below it and what it decided."""
    out: dict[str, Value] = {
        "chorus.cost_usd": span.cost_usd,
        "chorus.usage.input_tokens": span.usage.input_tokens,
        "chorus.usage.output_tokens": span.usage.output_tokens,
    }
    if span.model is not None:
        out["chorus.model"] = span.model
    prefix = f"chorus.{span.kind}."
    for key, value in span.attributes.items():
        v = to_value(value)
        if v is not None:
            out[prefix + key] = v
    return out


def failure_attributes(error: BaseException) -> dict[str, Value]:
    """``error.type``, plus the decision a failed pattern still made (its span rides on
    the error, as in the chorus trace)."""
    out: dict[str, Value] = {"error.type": type(error).__name__}
    code = getattr(error, "code", None)
    if isinstance(code, str):
        out["chorus.error.code"] = code
    children = getattr(error, "errors", None)
    if isinstance(children, dict) and children:  # AllModelsFailed: each child's error
        out["chorus.error.children"] = json.dumps({k: str(v) for k, v in children.items()},
                                                  ensure_ascii=False)
    span = error.trace if isinstance(error, ChorusError) else None
    if span is not None and span.kind != "model":
        out.update(decision_attributes(span))
    return out


def _message(m: Message) -> dict[str, Any]:
    return {"role": m.role, "parts": [{"type": "text", "content": m.content}]}


def content_attributes(request: Request, answer: Completion | None) -> dict[str, Value]:
    """The prompt and the answer, in the conventions' opt-in form (only when content
    recording is switched on)."""
    out: dict[str, Value] = {
        "gen_ai.input.messages": json.dumps(
            [_message(m) for m in request.messages if m.role != "system"],
            ensure_ascii=False),
        "input.value": request.prompt,
    }
    if request.system is not None:
        out["gen_ai.system_instructions"] = json.dumps(
            [{"type": "text", "content": request.system}], ensure_ascii=False)
    if answer is not None:
        out["gen_ai.output.messages"] = json.dumps([{
            "role": "assistant", "parts": [{"type": "text", "content": answer.text}],
            "finish_reason": answer.finish_reason or "stop"}], ensure_ascii=False)
        out["output.value"] = answer.text
    return out


def metric_attributes(attrs: Mapping[str, Value]) -> dict[str, Value]:
    """The attributes a model call's metrics carry (a few, so the series stay few)."""
    keys = ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model",
            "gen_ai.response.model", "chorus.system", "error.type", "server.address")
    return {k: attrs[k] for k in keys if k in attrs}
