"""Core types, the Model contract, context, errors and pricing."""

from chorus.core.compose import Wrapper, combine, failed_span, with_trace
from chorus.core.context import Context, current, scope
from chorus.core.errors import *  # noqa: F403
from chorus.core.errors import __all__ as _errors_all
from chorus.core.model import (
    Leaf,
    LeafHook,
    Model,
    StreamEvent,
    call,
    error_span,
    run_sync,
    stream_or_complete,
)
from chorus.core.pricing import BUILTIN_PRICES, PRICES_READ_ON, Price
from chorus.core.registry import BuildContext, Registry
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
    "BuildContext",
    "PRICES_READ_ON",
    "UNSET",
    "Completion",
    "ContentPart",
    "Context",
    "ForcedTool",
    "ImagePart",
    "Leaf",
    "LeafHook",
    "Message",
    "Model",
    "Params",
    "Price",
    "Registry",
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
    "Wrapper",
    "call",
    "combine",
    "current",
    "error_span",
    "failed_span",
    "run_sync",
    "scope",
    "stream_or_complete",
    "with_trace",
    *_errors_all,
]
