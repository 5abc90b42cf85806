"""Messages, tools, tool calls and logprobs in OpenAI's Chat Completions JSON, both ways
(no I/O): what ``OpenAIModel`` sends and reads, passed through as they are."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from chorus.core.errors import MalformedResponse
from chorus.core.types import (
    ForcedTool,
    ImagePart,
    Message,
    Params,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
)
from chorus.providers import _tool_ids

__all__ = ["CallPieces", "message_body", "messages_body", "read_logprobs", "read_tool_calls",
           "tool_params"]


def _part(p: Any) -> dict[str, Any]:
    if isinstance(p, ImagePart):
        image: dict[str, Any] = {"url": p.url}
        if p.detail is not None:
            image["detail"] = p.detail
        return {"type": "image_url", "image_url": image}
    return {"type": "text", "text": p.text}


def message_body(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role,
                           "content": [_part(p) for p in m.parts] if m.parts else m.content}
    if m.tool_calls:
        # "" rather than null: OpenAI takes either, llama.cpp's server only a string.
        out["tool_calls"] = [{"id": c.id, "type": "function",
                              "function": {"name": c.name, "arguments": c.arguments}}
                             for c in m.tool_calls]
    if m.tool_call_id is not None:
        out["tool_call_id"] = m.tool_call_id
    if m.name is not None:
        out["name"] = m.name
    return out


def tool_params(p: Params) -> dict[str, Any]:
    """The body's tools, tool_choice, parallel_tool_calls, logprobs and top_logprobs."""
    out: dict[str, Any] = {}
    tools = p.get("tools", None)
    if tools:
        out["tools"] = [{"type": "function", "function": {
            "name": t.name, **({"description": t.description} if t.description else {}),
            "parameters": dict(t.parameters),
            **({"strict": t.strict} if t.strict is not None else {})}} for t in tools]
    choice = p.get("tool_choice", None)
    if isinstance(choice, ForcedTool):
        out["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
    elif choice is not None:
        out["tool_choice"] = choice
    parallel = p.get("parallel_tool_calls", None)
    if parallel is not None and tools:
        out["parallel_tool_calls"] = parallel
    if p.get("logprobs", None):
        out["logprobs"] = True
        top = p.get("top_logprobs", None)
        if top:
            out["top_logprobs"] = top
    return out


def read_tool_calls(message: Any, *, model: str) -> tuple[ToolCall, ...]:
    calls = message.get("tool_calls") if isinstance(message, dict) else None
    if not calls:
        return ()
    out: list[ToolCall] = []
    for c in calls:
        fn = c.get("function") if isinstance(c, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise MalformedResponse("a tool call has no function name", model=model)
        args = fn.get("arguments")
        out.append(ToolCall(str(c.get("id") or f"call_{len(out)}"), fn["name"],
                            args if isinstance(args, str) else "{}"))
    return tuple(out)


def read_logprobs(choice: Any) -> tuple[TokenLogprob, ...] | None:
    lp = choice.get("logprobs") if isinstance(choice, dict) else None
    content = lp.get("content") if isinstance(lp, dict) else None
    if not isinstance(content, list):
        return None
    out = []
    for t in content:
        if not isinstance(t, dict):
            continue
        top = tuple((str(a.get("token", "")), float(a.get("logprob", 0.0)))
                    for a in t.get("top_logprobs") or () if isinstance(a, dict))
        out.append(TokenLogprob(str(t.get("token", "")), float(t.get("logprob", 0.0)), top))
    return tuple(out)


@dataclass(slots=True)
class CallPieces:
    """Streamed ``delta.tool_calls`` pieces, passed on and added up by index."""

    ids: dict[int, str] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    args: dict[int, list[str]] = field(default_factory=dict)
    logprobs: list[TokenLogprob] = field(default_factory=list)

    def add(self, delta: Any) -> list[ToolCallDelta]:
        pieces = delta.get("tool_calls") if isinstance(delta, dict) else None
        out: list[ToolCallDelta] = []
        for p in pieces or ():
            if not isinstance(p, dict):
                continue
            index = int(p.get("index", len(self.ids)))
            fn: dict[str, Any] = p["function"] if isinstance(p.get("function"), dict) else {}
            first = index not in self.ids
            if first:
                self.ids[index] = str(p.get("id") or f"call_{index}")
                self.args[index] = []
            name = fn.get("name")
            if isinstance(name, str) and index not in self.names:
                self.names[index] = name
            else:
                name = None
            args = fn.get("arguments")
            piece = args if isinstance(args, str) else ""
            self.args[index].append(piece)
            out.append(ToolCallDelta(index, self.ids[index] if first else None, name, piece))
        return out

    def calls(self) -> tuple[ToolCall, ...]:
        return tuple(ToolCall(self.ids[i], self.names.get(i, ""), "".join(self.args[i]))
                     for i in sorted(self.ids))


def messages_body(messages: Sequence[Message]) -> list[dict[str, Any]]:
    messages = _tool_ids.rewrite(messages, _tool_ids.OPENAI)  # e.g. after a fallback
    return [{"role": m.role, "content": m.content} if not (
        m.parts or m.tool_calls or m.tool_call_id is not None or m.name is not None)
            else message_body(m) for m in messages]
