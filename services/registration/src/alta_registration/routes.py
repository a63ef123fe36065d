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
from alta_registration.validation import check_new_password, parse_email, parse_name, parse_sign_up

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


async def resend_confirmation(request: Request) -> JSONResponse:
    email = parse_email(await read_json_object(request))
    settings = request.app.state.settings
    async with request.app.state.pool.connection() as conn:
        await repository.resend_confirmation(
            conn,
            email=email,
            token=secrets.token_urlsafe(32),
            token_ttl=timedelta(hours=settings.confirmation_token_ttl_hours),
            notice_interval=timedelta(seconds=settings.account_notice_interval_seconds),
            request_id=current_request_id(),
        )
    # The same answer for a pending, a confirmed, an unknown and a throttled address.
    return JSONResponse({"status": "accepted"}, status_code=202)


async def request_password_reset(request: Request) -> JSONResponse:
    email = parse_email(await read_json_object(request))
    settings = request.app.state.settings
    async with request.app.state.pool.connection() as conn:
        await repository.request_password_reset(
            conn,
            email=email,
            token=secrets.token_urlsafe(32),
            token_ttl=timedelta(minutes=settings.password_reset_token_ttl_minutes),
            interval=timedelta(seconds=settings.password_reset_interval_seconds),
            request_id=current_request_id(),
        )
    return JSONResponse({"status": "accepted"}, status_code=202)


def _raise_for_reset_outcome(outcome: repository.ResetOutcome | None) -> None:
    if outcome == "invalid":
        raise ApiError(404, "invalid_token", "This reset link is not valid.")
    if outcome == "used":
        raise ApiError(409, "token_used", "This reset link was already used.")
    if outcome == "expired":
        raise ApiError(410, "token_expired", "This reset link has expired.")


def _reset_token(data: dict[str, object]) -> str:
    token = data.get("token")
    if not isinstance(token, str) or not _TOKEN_SHAPE.match(token):
        raise ApiError(400, "invalid_token", "This reset link is not valid.")
    return token


async def check_password_reset(request: Request) -> JSONResponse:
    """Whether a reset link can still be used, so the page can say so before asking."""
    token = _reset_token(await read_json_object(request))
    async with request.app.state.pool.connection() as conn:
        _raise_for_reset_outcome(await repository.reset_token_state(conn, token))
    return JSONResponse({"status": "usable"})


async def complete_password_reset(request: Request) -> JSONResponse:
    data = await read_json_object(request)
    token = _reset_token(data)
    password = check_new_password(string_fields(data, ("password",))["password"])
    state = request.app.state
    # Checked before hashing, so invalid links cost no argon2 work.
    async with state.pool.connection() as conn:
        _raise_for_reset_outcome(await repository.reset_token_state(conn, token))
    password_hash = await state.password_hasher.hash(password)
    async with state.pool.connection() as conn:
        outcome = await repository.reset_password(conn, token, password_hash, current_request_id())
    _raise_for_reset_outcome(outcome)
    return JSONResponse({"status": "reset"})


async def _own_user_id(request: Request, action: str) -> uuid.UUID:
    """The caller's account id, once the policy allows `action` on it."""
    principal = await require_permission(
        request, action, lambda caller: user_resource(caller.subject)
    )
    try:
        return uuid.UUID(principal.subject)
    except ValueError as exc:
        raise ApiError(401, "invalid_token", "The access token is invalid.") from exc


def _user_json(user: repository.User) -> JSONResponse:
    return JSONResponse(_user_body(user))


def _user_body(user: repository.User) -> dict[str, str | None]:
    return {
        "id": str(user.id),
        "email": user.email,
        "name": user.name,
        "status": user.status,
        "registered_at": user.registered_at.isoformat(),
        "confirmed_at": user.confirmed_at.isoformat() if user.confirmed_at else None,
    }


def _gone() -> ApiError:
    return ApiError(404, "not_found", "This account no longer exists.")


async def current_user(request: Request) -> JSONResponse:
    user_id = await _own_user_id(request, "profile:read")
    async with request.app.state.pool.connection() as conn:
        user = await repository.user_by_id(conn, user_id)
    if user is None:
        raise _gone()
    return _user_json(user)


async def change_name(request: Request) -> JSONResponse:
    user_id = await _own_user_id(request, "profile:update")
    name = parse_name(await read_json_object(request))
    async with request.app.state.pool.connection() as conn:
        user = await repository.change_name(conn, user_id, name)
    if user is None:
        raise _gone()
    return _user_json(user)


async def change_password(request: Request) -> JSONResponse:
    user_id = await _own_user_id(request, "password:change")
    fields = string_fields(await read_json_object(request), ("current_password", "new_password"))
    new_password = check_new_password(fields["new_password"], "new_password")
    state = request.app.state
    async with state.pool.connection() as conn:
        old_hash = await repository.password_hash_of(conn, user_id)
    if old_hash is None:
        raise _gone()
    if not await state.password_hasher.verify(old_hash, fields["current_password"]):
        raise ApiError(
            403,
            "wrong_password",
            "The current password is not correct.",
            fields={"current_password": "The current password is not correct."},
        )
    new_hash = await state.password_hasher.hash(new_password)
    async with state.pool.connection() as conn:
        changed = await repository.change_password(
            conn, user_id, old_hash=old_hash, new_hash=new_hash, request_id=current_request_id()
        )
    if not changed:
        raise ApiError(409, "conflict", "The password was changed meanwhile; try again.")
    return JSONResponse({"status": "changed"})


ADMIN_PAGE_SIZES = range(1, 101)
MAX_SEARCH_LENGTH = 254


def _int_param(request: Request, name: str, default: int, allowed: range) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) not in allowed:
        raise ApiError(
            422,
            "invalid_input",
            f"{name} must be a whole number from {allowed.start} to {allowed.stop - 1}.",
            fields={name: "Out of range."},
        )
    return int(raw)


async def list_registrations(request: Request) -> JSONResponse:
    """Admin only: sign-ups newest first, searchable by address or name, paginated."""
    await require_permission(request, "registrations:list", "registrations")
    search = request.query_params.get("q", "").strip()
    if len(search) > MAX_SEARCH_LENGTH:
        raise ApiError(422, "invalid_input", "The search is too long.", fields={"q": "Too long."})
    per_page = _int_param(request, "per_page", 25, ADMIN_PAGE_SIZES)
    # Offset paging is fine for an admin list; the cap keeps a deep page from scanning forever.
    page = _int_param(request, "page", 1, range(1, 10_001))
    async with request.app.state.pool.connection() as conn:
        found = await repository.list_sign_ups(
            conn, search=search, limit=per_page, offset=(page - 1) * per_page
        )
    return JSONResponse(
        {
            "items": [_user_body(user) for user in found.users],
            "total": found.total,
            "page": page,
            "per_page": per_page,
        }
    )


routes = [
    Route("/registrations", create_registration, methods=["POST"]),
    Route("/confirmations", confirm_registration, methods=["POST"]),
    Route("/confirmations/resend", resend_confirmation, methods=["POST"]),
    Route("/password-resets", request_password_reset, methods=["POST"]),
    Route("/password-resets/check", check_password_reset, methods=["POST"]),
    Route("/password-resets/complete", complete_password_reset, methods=["POST"]),
    Route("/admin/registrations", list_registrations, methods=["GET"]),
    Route("/users/me", current_user, methods=["GET"]),
    Route("/users/me", change_name, methods=["PATCH"]),
    Route("/users/me/password", change_password, methods=["POST"]),
]
