"""ASGI middleware: request id, structured access log and a request body size limit."""

import re
import time
import uuid

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from alta_common.errors import ApiError
from alta_common.metrics import ServiceMetrics

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

log = structlog.get_logger("alta.access")


def current_request_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get("request_id")
    return value if isinstance(value, str) else None


class RequestBodyTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            413, "payload_too_large", f"The request body is larger than {limit} bytes."
        )


class RequestContextMiddleware:
    """Binds a request id to every log line of the request and logs one access line.

    The id comes from the caller's X-Request-ID when it is well-formed, so one id follows a
    sign-up from the BFF through every service and SQS message.
    """

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, metrics: ServiceMetrics | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        incoming = headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)

        status = 500
        started = time.perf_counter()
        limit = self.max_body_bytes
        declared = headers.get("content-length", "")
        received = int(declared) if declared.isdigit() else 0

        async def limited_receive() -> Message:
            nonlocal received
            # Raised inside the app so its own exception handler answers (JSON or HTML page).
            if received > limit:
                raise RequestBodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request" and not declared.isdigit():
                received += len(message.get("body", b""))
                if received > limit:
                    raise RequestBodyTooLarge(limit)
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_id)
        finally:
            duration = time.perf_counter() - started
            if self.metrics is not None:
                self.metrics.http_request_duration.labels(
                    scope["method"], route_template(scope), str(status)
                ).observe(duration)
            if scope["path"] not in _QUIET_PATHS:
                log.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    duration_ms=round(duration * 1000, 1),
                )


def route_template(scope: Scope) -> str:
    """The matched route's path template (`/confirm/{token}`), never the raw path: raw paths
    would give the metrics one series per token or typo."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
