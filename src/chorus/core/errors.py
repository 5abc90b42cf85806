"""Every error chorus raises, in one tree.

    ChorusError
    ├── ConfigError                 a config file or node is wrong (file, line, key)
    │   └── UnknownName             a model or system name that is not defined
    ├── MissingDependency           an optional package is not installed
    ├── NotSupported                (also NotImplementedError) an optional method
    │   ├── StreamingNotSupported
    │   ├── TokenCountingNotSupported
    │   └── CapabilityMissing       the request needs what the model does not accept
    ├── ProviderError               a model call failed (model, status_code, body)
    │   ├── AuthenticationError     401/403, or no API key
    │   ├── RateLimitError          429 (retry_after seconds when the server says)
    │   ├── ContextLengthError      the prompt does not fit the context window
    │   ├── BadRequestError         400 and other 4xx the caller must fix
    │   ├── ModelNotFoundError      the endpoint does not know the model
    │   ├── ServerError             5xx
    │   ├── ProviderTimeout         no answer in time
    │   ├── ProviderConnectionError the endpoint cannot be reached
    │   │   └── StreamCut           a stream ended before the answer did
    │   └── MalformedResponse       the endpoint answered with garbage
    ├── DeadlineExceeded            the request's deadline passed
    ├── BudgetExceeded              a call would spend more than is left
    ├── GuardrailViolation          a check blocked the input or output
    ├── StoreUnavailable            a state store (SQLite, Redis) cannot be reached
    ├── PatternError                a composite could not produce an answer
    │   ├── StepFailed              one named step of a pattern failed (cause kept)
    │   └── AllModelsFailed         every child failed (each child's error kept)
    └── Cancelled                   the request was cancelled

Each error's ``str`` is one line a user can act on. ``retryable`` says whether the
same call may succeed if tried again. ``trace`` is the span of the composite or wrapper
that raised it (``chorus.core.compose.with_trace``), so a failed call's trace is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chorus.core.types import Completion, Span

__all__ = [
    "AllModelsFailed",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceeded",
    "Cancelled",
    "CapabilityMissing",
    "ChorusError",
    "ConfigError",
    "ContextLengthError",
    "DeadlineExceeded",
    "GuardrailViolation",
    "MalformedResponse",
    "MissingDependency",
    "ModelNotFoundError",
    "NotSupported",
    "PatternError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeout",
    "RateLimitError",
    "ServerError",
    "StepFailed",
    "StoreUnavailable",
    "StreamCut",
    "StreamingNotSupported",
    "TokenCountingNotSupported",
    "UnknownName",
]


class ChorusError(Exception):
    """Base of every chorus error."""

    retryable: bool = False
    code: str = "chorus_error"
    #: The span of the composite or wrapper that raised this, with the calls made.
    trace: Span | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(ChorusError):
    """A configuration file or node is wrong; says where."""

    code = "config_error"

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        self.file, self.line, self.key, self.detail = file, line, key, message
        where = ""
        if file:
            where = f"{file}:{line}: " if line else f"{file}: "
        elif line:
            where = f"line {line}: "
        super().__init__(f"{where}{key + ': ' if key else ''}{message}")


class UnknownName(ConfigError):
    """A model or system name that the configuration does not define."""

    code = "unknown_name"


class MissingDependency(ChorusError):
    """An optional package needed for this feature is not installed."""

    code = "missing_dependency"

    def __init__(self, package: str, feature: str, extra: str | None = None) -> None:
        self.package = package
        hint = f"pip install 'chorus-llm[{extra}]'" if extra else f"pip install {package}"
        super().__init__(f"{feature} needs the package {package!r}: {hint}")


class NotSupported(ChorusError, NotImplementedError):
    """An optional capability the model class does not have."""

    code = "not_supported"


class StreamingNotSupported(NotSupported):
    def __init__(self, class_name: str) -> None:
        super().__init__(f"{class_name} does not support streaming")


class TokenCountingNotSupported(NotSupported):
    def __init__(self, class_name: str) -> None:
        super().__init__(f"{class_name} cannot count tokens")


class CapabilityMissing(NotSupported):
    """A request needs what a model does not accept (``missing``: tools, images, ...),
    found before any call is made."""

    code = "capability_missing"

    def __init__(self, model: str, missing: frozenset[str] | set[str],
                 able: list[str] | None = None) -> None:
        self.model, self.missing = model, frozenset(missing)
        what = ", ".join(sorted(self.missing))
        hint = (f"; models that accept {what}: {', '.join(able)}" if able else
                f"; no model of this config accepts {what}" if able is not None else "")
        super().__init__(f"{model!r} does not accept {what}{hint}")


class ProviderError(ChorusError):
    """A call to a model failed."""

    code = "provider_error"
    #: What a stream had sent before it failed (text, estimated usage and cost), so a
    #: fallback can continue the answer and bill both parts; None for a call that failed
    #: before its first piece.
    partial: Completion | None = None

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        status_code: int | None = None,
        body: str | None = None,
    ) -> None:
        self.model, self.status_code, self.body = model, status_code, body
        super().__init__(f"model {model!r}: {message}" if model else message)


class AuthenticationError(ProviderError):
    code = "authentication_error"


class RateLimitError(ProviderError):
    code = "rate_limit"
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)


class ContextLengthError(ProviderError):
    code = "context_length_exceeded"


class BadRequestError(ProviderError):
    code = "bad_request"


class ModelNotFoundError(ProviderError):
    code = "model_not_found"


class ServerError(ProviderError):
    code = "server_error"
    retryable = True


class ProviderTimeout(ProviderError):
    code = "timeout"
    retryable = True


class ProviderConnectionError(ProviderError):
    code = "connection_error"
    retryable = True


class StreamCut(ProviderConnectionError):
    """The connection closed mid-stream: no end marker, no finish reason."""

    code = "stream_cut"


class MalformedResponse(ProviderError):
    code = "malformed_response"
    retryable = True


class DeadlineExceeded(ChorusError):
    code = "deadline_exceeded"


class BudgetExceeded(ChorusError):
    """A call would spend more than the budget has left."""

    code = "budget_exceeded"

    def __init__(self, message: str, *, spent: float = 0.0, asked: float = 0.0,
                 limit: float = 0.0, unit: str = "usd") -> None:
        self.spent, self.asked, self.limit, self.unit = spent, asked, limit, unit
        super().__init__(message)


class GuardrailViolation(ChorusError):
    """A guardrail check blocked the input or the output."""

    code = "guardrail_violation"

    def __init__(self, check: str, reason: str, *, span: tuple[int, int] | None = None,
                 stage: str = "input") -> None:
        self.check, self.reason, self.span, self.stage = check, reason, span, stage
        super().__init__(f"guardrail {check!r} blocked the {stage}: {reason}")


class StoreUnavailable(ChorusError):
    """A state store (SQLite file, Redis server) cannot be reached or used."""

    code = "store_unavailable"


class PatternError(ChorusError):
    code = "pattern_error"


class StepFailed(PatternError):
    """One named step of a pattern failed; the cause is kept."""

    def __init__(self, pattern: str, step: str, cause: BaseException) -> None:
        self.pattern, self.step, self.cause = pattern, step, cause
        super().__init__(f"{pattern}: step {step!r} failed: {cause}")


class AllModelsFailed(PatternError):
    """Every child of a composite failed; each child's error is kept."""

    code = "all_models_failed"

    def __init__(self, pattern: str, errors: Mapping[str, BaseException]) -> None:
        self.pattern, self.errors = pattern, dict(errors)
        parts = "; ".join(f"{name}: {err}" for name, err in self.errors.items())
        super().__init__(f"{pattern}: every model failed ({parts})")


class Cancelled(ChorusError):
    code = "cancelled"
