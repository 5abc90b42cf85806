"""Core types, the Model contract, context, errors and pricing."""

from chorus.core.context import Context, current, scope
from chorus.core.errors import *  # noqa: F403
from chorus.core.errors import __all__ as _errors_all
from chorus.core.model import Model, StreamEvent, call, run_sync, stream_or_complete
from chorus.core.pricing import BUILTIN_PRICES, PRICES_READ_ON, Price
from chorus.core.types import (
    UNSET,
    Completion,
    ContentPart,
    ForcedTool,
    ImagePart,
    Message,
    Params,
    Request,
    Span,
    TextDelta,
    TextPart,
    TokenLogprob,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    Usage,
)

__all__ = [
    "BUILTIN_PRICES",
    "PRICES_READ_ON",
    "UNSET",
    "Completion",
    "ContentPart",
    "Context",
    "ForcedTool",
    "ImagePart",
    "Message",
    "Model",
    "Params",
    "Price",
    "Request",
    "Span",
    "StreamEvent",
    "TextDelta",
    "TextPart",
    "TokenLogprob",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "ToolChoice",
    "Usage",
    "call",
    "current",
    "run_sync",
    "scope",
    "stream_or_complete",
    *_errors_all,
]
