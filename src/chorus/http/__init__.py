"""The HTTP client the HTTP providers and embedders share: endpoints with API keys,
one pooled client per process, and statuses, error bodies and transport failures turned
into the typed error tree (``chorus.core.errors``) in one place.

    endpoint = Endpoint(HttpClient(base_url), "/chat/completions", api_key=key)
"""

from chorus.http._client import (
    Endpoint,
    HttpClient,
    error_for_code,
    error_for_status,
    is_local,
    key_usable,
    one_line,
    parse_retry_after,
    resolve_api_key,
    transport_error,
)
from chorus.http._sse import ServerSentEvent, SSEDecoder, iter_events

__all__ = [
    "Endpoint",
    "HttpClient",
    "SSEDecoder",
    "ServerSentEvent",
    "error_for_code",
    "error_for_status",
    "is_local",
    "iter_events",
    "key_usable",
    "one_line",
    "parse_retry_after",
    "resolve_api_key",
    "transport_error",
]
