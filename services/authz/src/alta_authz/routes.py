"""HTTP handlers of authz: login, refresh, logout, JWKS, and policy decisions."""

import hashlib
import math
import secrets
import time
import uuid
from datetime import timedelta

import jwt
import structlog
from psycopg import AsyncConnection
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from alta_authz import repository
from alta_authz.keys import KeyStore
from alta_authz.policy import is_allowed
from alta_authz.settings import Settings
from alta_common.emails import EmailNotValidError, canonical_email
from alta_common.errors import ApiError
from alta_common.requests import read_json_object, string_fields
from alta_common.tokens import ALGORITHM, Principal, require_principal

log = structlog.get_logger("alta.authz")

MAX_PASSWORD_LENGTH = 128
# Refresh tokens we issue are 43 characters; anything much longer was not issued by us.
MAX_REFRESH_TOKEN_LENGTH = 256


def _invalid_credentials() -> ApiError:
    return ApiError(401, "invalid_credentials", "Email or password is incorrect.")


def _invalid_grant() -> ApiError:
    return ApiError(401, "invalid_grant", "The session has ended; log in again.")


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _throttle_key(kind: str, value: str) -> bytes:
    return hashlib.sha256(f"{kind}:{value}".encode()).digest()


class _LoginThrottle:
    """Failed logins counted per account+IP, per account and per IP (see Settings)."""

    def __init__(self, settings: Settings, account: str, client_ip: str) -> None:
        self._settings = settings
        self.pair = _throttle_key("pair", f"{account}|{client_ip}")
        self.account = _throttle_key("account", account)
        self.ip = _throttle_key("ip", client_ip)

    @property
    def keys(self) -> list[bytes]:
        return [self.pair, self.account, self.ip]

    async def record_failure(self, conn: AsyncConnection[object]) -> None:
        s = self._settings
        window = timedelta(seconds=s.login_failure_window_seconds)
        base = timedelta(seconds=s.login_lock_base_seconds)
        lock_max = timedelta(seconds=s.login_lock_max_seconds)
        async with conn.transaction():
            for key, threshold, cap in (
                (self.pair, s.login_pair_threshold, lock_max),
                (
                    self.account,
                    s.login_account_threshold,
                    timedelta(seconds=s.login_account_lock_max_seconds),
                ),
                (self.ip, s.login_ip_threshold, lock_max),
            ):
                await repository.record_failure(
                    conn, key, window=window, threshold=threshold, lock_base=base, lock_max=cap
                )


async def login(request: Request) -> JSONResponse:
    fields = string_fields(await read_json_object(request), ("email", "password"))
    state = request.app.state
    settings: Settings = state.settings
    try:
        email: str | None = canonical_email(fields["email"])
    except EmailNotValidError:
        email = None
    password = fields["password"][: MAX_PASSWORD_LENGTH + 1]
    client_ip = request.client.host if request.client else "unknown"
    # Counted by the address typed, whether or not it has an account: the lock tells nothing.
    throttle = _LoginThrottle(settings, email or fields["email"].strip().lower(), client_ip)
    credentials = None
    async with state.pool.connection() as conn:
        wait = await repository.locked_for(conn, throttle.keys)
        if wait > 0:
            log.info("login throttled")
            raise ApiError(
                429,
                "too_many_attempts",
                "Too many failed attempts; try again later.",
                headers={"Retry-After": str(math.ceil(wait))},
            )
        if email is not None:
            credentials = await repository.credentials_by_email(conn, email)
    # Verified against a dummy hash when there is no account, so both take as long.
    password_hash = credentials.password_hash if credentials else None
    if not await state.password_hasher.verify(password_hash, password) or credentials is None:
        async with state.pool.connection() as conn:
            await throttle.record_failure(conn)
        log.info("login refused", reason="invalid_credentials")
        raise _invalid_credentials()
    if credentials.status != "confirmed":
        raise ApiError(403, "email_not_confirmed", "Confirm your email address before logging in.")
    refresh_token = secrets.token_urlsafe(32)
    async with state.pool.connection() as conn:
        await repository.clear_failures(conn, [throttle.pair, throttle.account])
        roles = await repository.roles_of(conn, credentials.id)
        family_id = await repository.start_session(
            conn,
            user_id=credentials.id,
            token_hash=_token_hash(refresh_token),
            token_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
            max_age=timedelta(seconds=settings.session_max_age_seconds),
        )
    log.info("login succeeded", user_id=str(credentials.id), family_id=str(family_id))
    return _tokens(request, credentials.id, family_id, roles, refresh_token)


def _tokens(
    request: Request,
    user_id: uuid.UUID,
    family_id: uuid.UUID,
    roles: frozenset[str],
    refresh_token: str,
) -> JSONResponse:
    settings: Settings = request.app.state.settings
    keys: KeyStore = request.app.state.keys
    key = keys.ring.signing_key(settings.jwt_key_activation_seconds)
    now = int(time.time())
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": str(user_id),
        "sid": str(family_id),
        "roles": sorted(roles),
        "iat": now,
        "exp": now + settings.access_token_ttl_seconds,
        "jti": uuid.uuid4().hex,
    }
    access_token = jwt.encode(
        claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid}
    )
    return JSONResponse(
        {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": settings.access_token_ttl_seconds,
            "refresh_token": refresh_token,
            "refresh_expires_in": settings.refresh_token_ttl_seconds,
        },
        headers={"Cache-Control": "no-store"},
    )


def _presented_refresh_token(fields: dict[str, str]) -> str:
    token = fields["refresh_token"]
    if not token or len(token) > MAX_REFRESH_TOKEN_LENGTH:
        raise _invalid_grant()
    return token


async def refresh(request: Request) -> JSONResponse:
    """Exchange a refresh token for new tokens; the presented one is spent (rotation)."""
    presented = _presented_refresh_token(
        string_fields(await read_json_object(request), ("refresh_token",))
    )
    state = request.app.state
    settings: Settings = state.settings
    new_token = secrets.token_urlsafe(32)
    async with state.pool.connection() as conn:
        outcome = await repository.rotate_refresh_token(
            conn,
            token_hash=_token_hash(presented),
            new_token_hash=_token_hash(new_token),
            token_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
            reuse_grace=timedelta(seconds=settings.refresh_reuse_grace_seconds),
        )
        if isinstance(outcome, str):
            log.info("refresh refused", reason=outcome)
            if outcome == "reused":
                log.warning("refresh token reused: session revoked")
            raise _invalid_grant()
        roles = await repository.roles_of(conn, outcome.user_id)
    return _tokens(request, outcome.user_id, outcome.family_id, roles, new_token)


async def logout(request: Request) -> Response:
    """End the session the refresh token belongs to. The same answer for any token."""
    token = string_fields(await read_json_object(request), ("refresh_token",))["refresh_token"]
    if token and len(token) <= MAX_REFRESH_TOKEN_LENGTH:
        async with request.app.state.pool.connection() as conn:
            if await repository.revoke_session_of_token(conn, _token_hash(token)):
                log.info("logged out")
    return Response(status_code=204)


async def revoke_all_sessions(request: Request) -> JSONResponse:
    """Log out everywhere: every session of the caller ends (access tokens run out within
    their lifetime; no new ones are issued)."""
    principal: Principal = await require_principal(request)
    target = f"user:{principal.subject}"
    if not is_allowed(
        subject=principal.subject,
        roles=principal.roles,
        action="sessions:revoke",
        resource=target,
    ):
        raise ApiError(403, "forbidden", "You are not allowed to do this.")
    try:
        user_id = uuid.UUID(principal.subject)
    except ValueError as exc:
        raise ApiError(401, "invalid_token", "The access token is invalid.") from exc
    async with request.app.state.pool.connection() as conn:
        revoked = await repository.revoke_all_sessions(conn, user_id)
    log.info("logged out everywhere", user_id=principal.subject, count=revoked)
    return JSONResponse({"revoked": revoked})


async def jwks(request: Request) -> JSONResponse:
    keys: KeyStore = request.app.state.keys
    return JSONResponse(keys.ring.jwks(), headers={"Cache-Control": "max-age=60"})


async def authorize(request: Request) -> JSONResponse:
    """Decide for the caller's own token: subject and roles come from it, never from the body."""
    principal = await require_principal(request)
    fields = string_fields(await read_json_object(request), ("action", "resource"))
    allowed = is_allowed(
        subject=principal.subject,
        roles=principal.roles,
        action=fields["action"],
        resource=fields["resource"],
    )
    return JSONResponse({"allowed": allowed})


routes = [
    Route("/login", login, methods=["POST"]),
    Route("/token/refresh", refresh, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/sessions/revoke-all", revoke_all_sessions, methods=["POST"]),
    Route("/.well-known/jwks.json", jwks, methods=["GET"]),
    Route("/authorize", authorize, methods=["POST"]),
]
