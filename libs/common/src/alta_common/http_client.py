"""The pooled HTTP client each service creates once in its lifespan."""

import httpx

from alta_common.request_context import REQUEST_ID_HEADER, current_request_id


async def _propagate_request_id(request: httpx.Request) -> None:
    request_id = current_request_id()
    if request_id and REQUEST_ID_HEADER not in request.headers:
        request.headers[REQUEST_ID_HEADER] = request_id


def create_http_client(
    *,
    base_url: str = "",
    timeout_seconds: float = 5.0,
    max_connections: int = 200,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """`transport` lets unit tests fake a downstream service (httpx.MockTransport)."""
    return httpx.AsyncClient(
        base_url=base_url,
        transport=transport,
        timeout=httpx.Timeout(timeout_seconds),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=50),
        event_hooks={"request": [_propagate_request_id]},
    )
