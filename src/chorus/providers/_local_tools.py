"""Tool calls for models that have no tool-calling format of their own (the local
llama.cpp models): how the tools are put in the prompt, the JSON schema that decoding
follows, and how the answer becomes ``ToolCall``s. Plain functions, no I/O.

- A call forced to one function (``tool_choice={"function": ...}``, or ``required`` with
  one tool) is decoded under the grammar of that function's parameter schema: the
  answer is the arguments, always JSON for the schema.
- ``required`` with several tools is decoded under ``{"name": ..., "arguments": ...}``,
  one branch per tool, so the name is one of the tools and the arguments fit it.
- ``auto`` shows the tools and the reply format in the prompt and decodes freely; an
  answer that is exactly such a JSON object naming a tool becomes a call, anything
  else is the text answer. Right after a tool's result, ``auto`` answers in words: the
  small bundled models otherwise copy the call they see and loop.

Integer ``minimum``/``maximum`` are kept in the grammar (llama-cpp-python's converter
drops them; see _int_range.py); number bounds are not (a float may fall outside them).
Strings the schema leaves unbounded get a ``maxLength`` in the grammar (a subset of the
schema, so the arguments still fit it), so that a small model cannot run a string until
``max_tokens`` cuts the JSON off.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from chorus.core.errors import BadRequestError
from chorus.core.types import ForcedTool, Message, Request, Tool, ToolCall

__all__ = ["ToolPlan", "bounded", "call_id", "plain_messages", "plan_for", "read_answer"]

#: The longest string the grammar lets a model write where the schema sets no limit.
MAX_STRING: Final = 200

_ids = random.Random()


def call_id() -> str:
    return f"call_{_ids.getrandbits(96):024x}"


@dataclass(frozen=True, slots=True)
class ToolPlan:
    mode: Literal["forced", "required", "auto"]
    tools: tuple[Tool, ...]
    #: The JSON schema decoding follows (None: free text).
    schema: Mapping[str, Any] | None
    #: What the system message gains.
    instruction: str


def bounded(schema: Any) -> Any:
    """``schema`` with every unbounded string given ``maxLength`` (``MAX_STRING``)."""
    if isinstance(schema, list):
        return [bounded(s) for s in schema]
    if not isinstance(schema, Mapping):
        return schema
    out = {k: bounded(v) for k, v in schema.items()}
    kinds = out.get("type")
    if (kinds == "string" or isinstance(kinds, list) and "string" in kinds) and not any(
            k in out for k in ("maxLength", "enum", "const", "format", "pattern")):
        out["maxLength"] = MAX_STRING
    return out


def _describe(tools: Sequence[Tool]) -> str:
    lines = []
    for t in tools:
        about = f": {t.description}" if t.description else ""
        lines.append(f"- {t.name}{about}\n  arguments (JSON schema): "
                     f"{json.dumps(t.parameters, separators=(',', ':'))}")
    return "\n".join(lines)


def _named(tool: Tool) -> dict[str, Any]:
    return {"type": "object", "properties": {"name": {"const": tool.name},
                                             "arguments": bounded(tool.parameters)},
            "required": ["name", "arguments"]}


def plan_for(request: Request) -> ToolPlan | None:
    """How to answer ``request``'s tools (None when it offers none, or says ``none``)."""
    p = request.params
    tools: tuple[Tool, ...] = p.tools or ()  # type: ignore[assignment]
    choice = p.get("tool_choice", None) or "auto"
    if not tools or choice == "none":
        return None
    if choice == "auto" and request.messages and request.messages[-1].role == "tool":
        # The small local models copy the call they see and loop; with a result to
        # report, they answer in words.
        return None
    if choice == "required" and len(tools) == 1:
        choice = ForcedTool(tools[0].name)
    if isinstance(choice, ForcedTool):
        found = [t for t in tools if t.name == choice.name]
        if not found:
            raise BadRequestError(f"tool_choice names {choice.name!r}, which is not a tool")
        tool = found[0]
        about = f" ({tool.description})" if tool.description else ""
        return ToolPlan("forced", (tool,), bounded(tool.parameters),
                        f"Call the function {tool.name}{about}. Reply with only its "
                        "arguments as one JSON object that follows this schema: "
                        f"{json.dumps(tool.parameters, separators=(',', ':'))}")
    reply = ('Reply with only one JSON object: {"name": <function name>, '
             '"arguments": {<the arguments>}}')
    if choice == "required":
        return ToolPlan("required", tools, {"anyOf": [_named(t) for t in tools]},
                        f"Call one of these functions.\n{_describe(tools)}\n{reply}.")
    return ToolPlan("auto", tools, None,
                    f"You can call these functions.\n{_describe(tools)}\nTo call one, "
                    f"{reply[0].lower()}{reply[1:]}. Otherwise answer normally.")


def read_answer(plan: ToolPlan, text: str, cid: str | None = None
                ) -> tuple[str, tuple[ToolCall, ...]]:
    """The text and the tool calls in an answer decoded under ``plan`` (the first call's
    id is ``cid`` when given)."""
    cid = cid or call_id()
    if plan.mode == "forced":
        return "", (ToolCall(cid, plan.tools[0].name, text.strip()),)
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    names = {t.name for t in plan.tools}
    if isinstance(doc, dict) and doc.get("name") in names and isinstance(
            doc.get("arguments"), dict):
        args = json.dumps(doc["arguments"], ensure_ascii=False)
        return "", (ToolCall(cid, doc["name"], args),)
    if plan.mode == "required":  # only a cut-off answer gets here: keep what was written
        return "", (ToolCall(cid, plan.tools[0].name, text.strip()),)
    return text, ()


def plain_messages(messages: Sequence[Message]) -> tuple[Message, ...]:
    """Messages any chat template can render: an assistant's calls written as the JSON
    it would have answered, a tool's result as a user message naming the call."""
    out = []
    for m in messages:
        if m.tool_calls:
            calls = "\n".join(json.dumps({"name": c.name, "arguments": _loose(c.arguments)},
                                         ensure_ascii=False) for c in m.tool_calls)
            out.append(Message("assistant", f"{m.content}\n{calls}".strip()))
        elif m.role == "tool":
            out.append(Message("user", f"Result of the call {m.tool_call_id}:\n{m.content}"))
        elif m.parts or m.name:
            out.append(Message(m.role, m.content))
        else:
            out.append(m)
    return tuple(out)


def _loose(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments
