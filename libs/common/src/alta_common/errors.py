"""One JSON error shape for every service: {"error": {"code", "message", "fields"?}}."""

from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

log = structlog.get_logger("alta.errors")


class ApiError(HTTPException):
    """An HTTP error with a stable machine code and a message a person can act on."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        *,
        fields: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status_code, detail=message, headers=headers)
        self.code = code
        self.fields = fields


def error_body(code: str, message: str, fields: dict[str, str] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    return {"error": error}


async def database_unavailable_handler(_: Request, exc: Exception) -> Response:
    """The database is down or saturated: ask the caller to retry instead of failing with 500."""
    log.warning("database unavailable", error=repr(exc))
    return JSONResponse(
        error_body("unavailable", "The service is briefly unavailable; try again in a moment."),
        status_code=503,
        headers={"Retry-After": "2"},
    )


async def http_exception_handler(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = exc.code if isinstance(exc, ApiError) else _DEFAULT_CODES.get(exc.status_code, "error")
    fields = exc.fields if isinstance(exc, ApiError) else None
    return JSONResponse(
        error_body(code, str(exc.detail), fields), status_code=exc.status_code, headers=exc.headers
    )


_DEFAULT_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_requests",
    503: "unavailable",
}
