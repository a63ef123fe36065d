"""HTTP handlers of authz: login, JWKS, and policy decisions."""

import time
import uuid

import jwt
import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from alta_authz import repository
from alta_authz.keys import SigningKey
from alta_authz.policy import is_allowed
from alta_authz.settings import Settings
from alta_common.emails import EmailNotValidError, canonical_email
from alta_common.errors import ApiError
from alta_common.requests import read_json_object, string_fields
from alta_common.tokens import ALGORITHM, require_principal

log = structlog.get_logger("alta.authz")

_INVALID_CREDENTIALS = ApiError(401, "invalid_credentials", "Email or password is incorrect.")
MAX_PASSWORD_LENGTH = 128


async def login(request: Request) -> JSONResponse:
    fields = string_fields(await read_json_object(request), ("email", "password"))
    state = request.app.state
    try:
        email = canonical_email(fields["email"])
    except EmailNotValidError:
        email = None
    password = fields["password"][: MAX_PASSWORD_LENGTH + 1]
    credentials = None
    if email is not None:
        async with state.pool.connection() as conn:
            credentials = await repository.credentials_by_email(conn, email)
    # Verified against a dummy hash when there is no account, so both take as long.
    password_hash = credentials.password_hash if credentials else None
    if not await state.password_hasher.verify(password_hash, password) or credentials is None:
        log.info("login refused", reason="invalid_credentials")
        raise _INVALID_CREDENTIALS
    if credentials.status != "confirmed":
        raise ApiError(403, "email_not_confirmed", "Confirm your email address before logging in.")
    async with state.pool.connection() as conn:
        roles = await repository.roles_of(conn, credentials.id)
    settings: Settings = state.settings
    token = _issue_access_token(state.signing_key, settings, credentials.id, roles)
    log.info("login succeeded", user_id=str(credentials.id))
    return JSONResponse(
        {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": settings.access_token_ttl_seconds,
        }
    )


def _issue_access_token(
    key: SigningKey, settings: Settings, user_id: uuid.UUID, roles: frozenset[str]
) -> str:
    now = int(time.time())
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": str(user_id),
        "roles": sorted(roles),
        "iat": now,
        "exp": now + settings.access_token_ttl_seconds,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})


async def jwks(request: Request) -> JSONResponse:
    key: SigningKey = request.app.state.signing_key
    return JSONResponse({"keys": [key.public_jwk]}, headers={"Cache-Control": "max-age=60"})


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
    Route("/.well-known/jwks.json", jwks, methods=["GET"]),
    Route("/authorize", authorize, methods=["POST"]),
]
