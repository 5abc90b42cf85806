"""Tools, tool calls, tool results and images in the Anthropic Messages API, both ways
(no I/O): OpenAI's shapes, which chorus uses, to ``tool_use`` / ``tool_result`` /
``image`` blocks and back."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from chorus.core.errors import BadRequestError, MalformedResponse
from chorus.core.types import ForcedTool, ImagePart, Message, Params, ToolCall
from chorus.providers import _tool_ids

__all__ = ["messages_body", "read_tool_calls", "tool_params"]


def _image(p: ImagePart) -> dict[str, Any]:
    if p.is_data:
        try:
            media_type, data = p.data()
        except ValueError:
            raise BadRequestError("an image data URL must be base64 "
                                  "(data:image/png;base64,...)") from None
        return {"type": "image", "source": {"type": "base64", "media_type": media_type,
                                            "data": data}}
    return {"type": "image", "source": {"type": "url", "url": p.url}}


def _input(arguments: str) -> Any:
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        raise BadRequestError(f"a tool call's arguments are not JSON: {arguments[:80]!r}"
                              ) from None
    return value


def _content(m: Message) -> str | list[dict[str, Any]]:
    if m.tool_calls:
        blocks: list[dict[str, Any]] = [{"type": "text", "text": m.content}] if m.content else []
        blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": _input(c.arguments)}
                   for c in m.tool_calls]
        return blocks
    if m.parts:
        return [_image(p) if isinstance(p, ImagePart) else {"type": "text", "text": p.text}
                for p in m.parts]
    return m.content


def messages_body(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """The ``messages`` list: system messages left out (they go apart), each tool result
    a ``tool_result`` block in a user turn (consecutive results share one turn). Tool-call
    ids another provider made are rewritten where Anthropic would refuse them."""
    out: list[dict[str, Any]] = []
    for m in _tool_ids.rewrite(messages, _tool_ids.ANTHROPIC):
        if m.role == "system":
            continue
        if m.role == "tool":
            block = {"type": "tool_result", "tool_use_id": m.tool_call_id or "",
                     "content": m.content}
            last = out[-1] if out else None
            if last is not None and last["role"] == "user" and isinstance(
                    last["content"], list) and last["content"] and all(
                    b.get("type") == "tool_result" for b in last["content"]):
                last["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
            continue
        out.append({"role": "assistant" if m.role == "assistant" else "user",
                    "content": _content(m)})
    return out


def tool_params(p: Params) -> dict[str, Any]:
    """``tools`` and ``tool_choice`` in Anthropic's shapes (``required`` is ``any``)."""
    tools = p.get("tools", None)
    if not tools:
        return {}
    out: dict[str, Any] = {"tools": [
        {"name": t.name, **({"description": t.description} if t.description else {}),
         "input_schema": dict(t.parameters)} for t in tools]}
    choice = p.get("tool_choice", None)
    if isinstance(choice, ForcedTool):
        tc: dict[str, Any] = {"type": "tool", "name": choice.name}
    else:
        tc = {"type": {"required": "any"}.get(choice or "auto", choice or "auto")}
    if p.get("parallel_tool_calls", None) is False and tc["type"] != "none":
        tc["disable_parallel_tool_use"] = True
    out["tool_choice"] = tc
    return out


def read_tool_calls(data: Any, *, skip: str | None, model: str) -> tuple[ToolCall, ...]:
    """The ``tool_use`` blocks of a message as calls (leaving out the tool named
    ``skip``, the one that carries a structured answer)."""
    out = []
    for block in data.get("content") or ():
        if not isinstance(block, dict) or block.get("type") != "tool_use":
            continue
        if block.get("name") == skip:
            continue
        if not isinstance(block.get("name"), str) or not block.get("id"):
            raise MalformedResponse("a tool_use block has no name or id", model=model)
        out.append(ToolCall(str(block["id"]), block["name"],
                            json.dumps(block.get("input") or {}, ensure_ascii=False)))
    return tuple(out)
