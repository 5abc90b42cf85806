"""The HTTP client the HTTP providers and embedders share: endpoints with API keys, one
``Transport`` interface with one method (``handle(request) -> response``), and statuses,
error bodies and transport failures turned into the typed error tree
(``chorus.core.errors``) in one place. ``MockTransport`` is the public test double.

    def handler(request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, json={"choices": [...], "usage": {...}})

    model = OpenAIModel("m", base_url="http://test/v1", transport=MockTransport(handler))
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
from chorus.http._transport import (
    AiohttpTransport,
    H1Transport,
    HttpRequest,
    HttpResponse,
    HttpxTransport,
    MockTransport,
    Transport,
    TransportFailure,
)

__all__ = [
    "AiohttpTransport",
    "Endpoint",
    "H1Transport",
    "HttpClient",
    "HttpRequest",
    "HttpResponse",
    "HttpxTransport",
    "MockTransport",
    "Transport",
    "TransportFailure",
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
