"""OpenAI's legacy Completions API (``POST /v1/completions``) to and from chorus types
(no I/O).

Each prompt becomes a chorus Request of one user message, answered by the system as a
chat request would be (chorus's models are chat models: a prompt is answered, not
continued under a raw text template); a list of prompts gives one choice per prompt, in
order. ``echo`` puts the prompt before the answer; ``logprobs`` (an int) asks each
token's log-probability with that many alternatives, returned in the legacy shape.
Every field is in ``COMPLETIONS_FIELDS``: done, taken without effect on the answer, or
refused with a 400 naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from chorus.core import types as T
from chorus.core.types import Completion, TokenLogprob, Usage
from chorus.gateway.chat_request import MAX_TEXT_CHARS, ChorusOptions, StreamOptions
from chorus.gateway.openai_wire import usage_body
from chorus.gateway.wire_error import WireError

__all__ = [
    "COMPLETIONS_FIELDS",
    "MAX_PROMPTS",
    "CompletionsRequest",
    "answer_choice",
    "choice_body",
    "completion_body",
    "legacy_logprobs",
    "to_requests",
]

#: The most prompts one request may list (each is one call of the system).
MAX_PROMPTS: Final = 128

#: What chorus does with each field of the Completions body.
COMPLETIONS_FIELDS: Final[Mapping[str, str]] = {
    "model": "yes: the system's name",
    "prompt": f"yes: a string or a list of up to {MAX_PROMPTS} strings, each sent as one "
              "user message (token-id prompts are refused)",
    "max_tokens": "yes (unset: the system's own default, not OpenAI's 16)",
    "temperature": "yes",
    "top_p": "yes",
    "stop": "yes (up to 4)",
    "seed": "yes",
    "n": "1 only: one choice per request; for more, send it again or serve a "
         "fanout or vote system",
    "best_of": "yes (1 only)",
    "echo": "yes (not with logprobs)",
    "logprobs": "yes (0-5)",
    "stream": "yes",
    "stream_options": "yes: include_usage",
    "chorus": "chorus's own: {trace: true} returns the whole trace",
    "user": "taken, no effect on the answer",
    "frequency_penalty": "refused unless 0",
    "presence_penalty": "refused unless 0",
    "logit_bias": "refused unless empty",
    "suffix": "refused unless empty (no insertion)",
}

_HARMLESS: Final[Mapping[str, tuple[Any, ...]]] = {
    "frequency_penalty": (0,), "presence_penalty": (0,), "logit_bias": ({},),
    "suffix": ("",), "n": (1,), "best_of": (1,),
}


class CompletionsRequest(BaseModel):
    """``POST /v1/completions``."""

    # Strict: "stream": "yes" is not a boolean. Unknown fields are refused by name.
    model_config = ConfigDict(extra="forbid", strict=True)
    model: str = Field(min_length=1, max_length=256)
    prompt: str | list[str] | list[int] | list[list[int]]
    max_tokens: int | None = Field(None, ge=1, le=1_000_000)
    temperature: float | None = Field(None, ge=0, le=T.MAX_TEMPERATURE)
    top_p: float | None = Field(None, ge=0, le=1)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1)
    n: int | None = Field(None, ge=1)
    best_of: int | None = Field(None, ge=0, le=20)
    echo: StrictBool | None = None
    logprobs: int | None = Field(None, ge=0, le=5)
    stream: StrictBool | None = False
    stream_options: StreamOptions | None = None
    chorus: ChorusOptions | None = None
    user: str | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    suffix: str | None = None


def _refuse(name: str, why: str = "") -> WireError:
    return WireError(400, f"{name}: {why or 'chorus does not support it'} "
                     f"({COMPLETIONS_FIELDS[name]}); see the README's table of Completions "
                     "fields", param=name, code="unsupported_field")


def _prompts(prompt: str | list[str] | list[int] | list[list[int]]) -> list[str]:
    if isinstance(prompt, str):
        prompt = [prompt]
    if not prompt:
        raise WireError(400, "prompt: give a string or a non-empty list of strings",
                        param="prompt", code="invalid_value")
    if not all(isinstance(p, str) for p in prompt):
        raise _refuse("prompt", "token ids are not supported, send the text")
    if len(prompt) > MAX_PROMPTS:
        raise WireError(400, f"prompt: at most {MAX_PROMPTS} prompts in one request",
                        param="prompt", code="invalid_value")
    out = [p for p in prompt if isinstance(p, str)]
    for i, p in enumerate(out):
        if len(p) > MAX_TEXT_CHARS:
            raise WireError(400, f"prompt: at most {MAX_TEXT_CHARS:,} characters per prompt "
                            f"(prompt {i} has {len(p):,})", param="prompt",
                            code="invalid_value")
    return out


def to_requests(body: CompletionsRequest, metadata: Mapping[str, Any]) -> list[T.Request]:
    """One chorus Request per prompt (only the parameters the body gives)."""
    for name, harmless in _HARMLESS.items():
        value = getattr(body, name)
        if value is not None and value not in harmless:
            raise _refuse(name)
    if body.echo and body.logprobs is not None:
        raise _refuse("echo", "echo with logprobs would need the prompt's own "
                      "log-probabilities, which chorus does not compute")
    prompts = _prompts(body.prompt)
    given: dict[str, Any] = {}
    for name in ("max_tokens", "temperature", "top_p", "seed"):
        value = getattr(body, name)
        if value is not None:
            given[name] = value
    if body.stop is not None:
        stops = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop)
        if len(stops) > 4:
            raise WireError(400, "stop: at most 4 sequences", param="stop",
                            code="invalid_value")
        if stops:
            given["stop"] = stops
    if body.logprobs is not None:
        given["logprobs"], given["top_logprobs"] = True, body.logprobs
    params = T.Params(**given) if given else T.Params()
    return [T.Request((T.Message("user", p),), params, metadata) for p in prompts]


# -- response bodies -------------------------------------------------------------------


def legacy_logprobs(tokens: tuple[TokenLogprob, ...] | None, offset: int = 0,
                    ) -> dict[str, Any] | None:
    """The legacy ``logprobs`` object: tokens, their log-probabilities, the top
    alternatives at each position as {token: logprob}, and where each token starts in
    the choice's text (from ``offset``)."""
    if tokens is None:
        return None
    offsets, at = [], offset
    for t in tokens:
        offsets.append(at)
        at += len(t.token)
    return {"tokens": [t.token for t in tokens],
            "token_logprobs": [t.logprob for t in tokens],
            "top_logprobs": [dict(t.top) for t in tokens],
            "text_offset": offsets}


def _finish(reason: str | None) -> str | None:
    if reason is None:
        return None
    return reason if reason in ("stop", "length", "content_filter") else "stop"


def choice_body(index: int, text: str, *, finish: str | None = None,
                logprobs: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"text": text, "index": index, "logprobs": logprobs,
            "finish_reason": _finish(finish)}


def completion_body(cid: str, created: int, model: str, choices: list[dict[str, Any]],
                    usage: Usage | None, chorus: dict[str, Any] | None = None,
                    include_usage: bool = False) -> dict[str, Any]:
    """A ``text_completion`` object: a whole answer, or (streamed) one chunk of one."""
    out: dict[str, Any] = {"id": cid, "object": "text_completion", "created": created,
                           "model": model, "choices": choices}
    if usage is not None:
        out["usage"] = usage_body(usage)
    elif include_usage:
        out["usage"] = None
    if chorus is not None:
        out["chorus"] = chorus
    return out


def answer_choice(index: int, prompt: str, answer: Completion, echo: bool
                  ) -> dict[str, Any]:
    """The choice for one prompt's whole answer."""
    head = prompt if echo else ""
    return choice_body(index, head + answer.text, finish=answer.finish_reason or "stop",
                       logprobs=legacy_logprobs(answer.logprobs, len(head)))
