"""Asking a model for structure: a JSON schema in ``response_format``, tolerant parsing,
and one repair round trip when the answer still does not parse.

Providers that constrain decoding (llama.cpp grammars, OpenAI structured outputs) always
return parseable JSON; the tolerant parser covers those that don't (code fences, text
around the object, trailing commas).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from chorus.core.errors import MalformedResponse
from chorus.core.model import Model, call
from chorus.core.types import Completion, Request

__all__ = ["ask_json", "parse_json"]

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")


def parse_json(text: str) -> Any:
    """The first JSON value in ``text``; raises ValueError when there is none."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for cand in candidates:
        cand = cand.strip()
        for attempt in (cand, _TRAILING_COMMA.sub(r"\1", cand)):
            try:
                return json.loads(attempt)
            except json.JSONDecodeError:
                pass
        decoder = json.JSONDecoder()
        for i, ch in enumerate(cand):
            if ch in "{[":
                try:
                    value, _ = decoder.raw_decode(_TRAILING_COMMA.sub(r"\1", cand[i:]))
                    return value
                except json.JSONDecodeError:
                    continue
    raise ValueError("no JSON value found in the answer")


async def ask_json(
    model: Model,
    request: Request,
    schema: Mapping[str, Any],
    *,
    repair: bool = True,
) -> tuple[Any, list[Completion]]:
    """Ask ``model`` for JSON following ``schema``; return the value and every call made.

    Raises MalformedResponse (with the calls made kept in ``.completions``) when the
    answer does not parse even after the repair round trip.
    """
    constrained = request.with_params(response_format=dict(schema))
    first = await call(model, constrained)
    calls = [first]
    try:
        return parse_json(first.text), calls
    except ValueError as exc:
        error = exc
    if repair:
        fix = constrained.with_prompt(
            f"{request.prompt}\n\nYour previous answer was not valid JSON ({error}):\n"
            f"{first.text[:2000]}\n\nAnswer again with only a JSON value that follows this "
            f"schema:\n{json.dumps(schema)}"
        )
        second = await call(model, fix)
        calls.append(second)
        try:
            return parse_json(second.text), calls
        except ValueError as exc:
            error = exc
    err = MalformedResponse(f"expected JSON: {error}", model=model.name)
    err.completions = calls  # type: ignore[attr-defined]
    raise err
