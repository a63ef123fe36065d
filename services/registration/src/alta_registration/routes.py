"""HTTP handlers of the registration service."""

import re
import secrets
import uuid
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from alta_common.authorization import require_permission, user_resource
from alta_common.errors import ApiError
from alta_common.request_context import current_request_id
from alta_common.requests import read_json_object, string_fields
from alta_registration import repository
from alta_registration.validation import parse_sign_up

_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")


async def create_registration(request: Request) -> JSONResponse:
    sign_up = parse_sign_up(await read_json_object(request))
    state = request.app.state
    password_hash = await state.password_hasher.hash(sign_up.password)
    async with state.pool.connection() as conn:
        await repository.register(
            conn,
            email=sign_up.email,
            name=sign_up.name,
            password_hash=password_hash,
            token=secrets.token_urlsafe(32),
            token_ttl=timedelta(hours=state.settings.confirmation_token_ttl_hours),
            notice_interval=timedelta(seconds=state.settings.account_notice_interval_seconds),
            request_id=current_request_id(),
        )
    # The same answer whatever happened: a new account, an existing one, a throttled notice.
    return JSONResponse({"status": "accepted"}, status_code=202)


async def confirm_registration(request: Request) -> JSONResponse:
    token = string_fields(await read_json_object(request), ("token",))["token"]
    if not _TOKEN_SHAPE.match(token):
        raise ApiError(400, "invalid_token", "This confirmation link is not valid.")
    async with request.app.state.pool.connection() as conn:
        outcome = await repository.confirm(conn, token, current_request_id())
    if outcome == "invalid":
        raise ApiError(404, "invalid_token", "This confirmation link is not valid.")
    if outcome == "expired":
        raise ApiError(410, "token_expired", "This confirmation link has expired.")
    return JSONResponse({"status": outcome})


async def current_user(request: Request) -> JSONResponse:
    principal = await require_permission(
        request, "profile:read", lambda caller: user_resource(caller.subject)
    )
    try:
        user_id = uuid.UUID(principal.subject)
    except ValueError as exc:
        raise ApiError(401, "invalid_token", "The access token is invalid.") from exc
    async with request.app.state.pool.connection() as conn:
        user = await repository.user_by_id(conn, user_id)
    if user is None:
        raise ApiError(404, "not_found", "This account no longer exists.")
    return JSONResponse(
        {
            "id": str(user.id),
            "email": user.email,
            "name": user.name,
            "status": user.status,
            "registered_at": user.registered_at.isoformat(),
            "confirmed_at": user.confirmed_at.isoformat() if user.confirmed_at else None,
        }
    )


routes = [
    Route("/registrations", create_registration, methods=["POST"]),
    Route("/confirmations", confirm_registration, methods=["POST"]),
    Route("/users/me", current_user, methods=["GET"]),
]
