"""JWT verification against authz's JWKS, done locally by every service."""

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import structlog
from starlette.requests import Request

from alta_common.errors import ApiError

log = structlog.get_logger("alta.tokens")

# The one algorithm authz signs with; anything else is rejected before any key is used.
ALGORITHM = "EdDSA"
REQUIRED_CLAIMS = ["exp", "iat", "sub", "iss", "aud"]


class InvalidToken(Exception):
    pass


class KeysUnavailable(Exception):
    """The token names a key we could not fetch: authz is unreachable, the token may be fine."""


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[str]
    claims: dict[str, Any]


class JwtVerifier:
    """Verifies access tokens with keys from the JWKS, cached.

    The key set is refetched when it is older than `max_age_seconds` (so a key removed from
    the JWKS stops being trusted) and when a token names an unknown `kid` (so a rotation is
    picked up at once), but at most once per `refresh_interval_seconds` and one fetch at a
    time, so forged kids or an authz outage cannot make every request hammer authz.
    """

    def __init__(
        self,
        http: httpx.AsyncClient | None,
        *,
        jwks_url: str = "",
        static_jwks: dict[str, Any] | None = None,
        issuer: str,
        audience: str,
        leeway_seconds: float = 5.0,
        refresh_interval_seconds: float = 30.0,
        max_age_seconds: float = 300.0,
    ) -> None:
        self._http = http
        self._jwks_url = jwks_url
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_seconds
        self._refresh_interval = refresh_interval_seconds
        self._max_age = max_age_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._loaded_at = float("-inf")
        self._attempted_at = float("-inf")
        self._refresh_lock = asyncio.Lock()
        if static_jwks is not None:
            # The issuer itself verifies with its own keys and never fetches.
            self._load(static_jwks)

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed token") from exc
        if header.get("alg") != ALGORITHM:
            raise InvalidToken("unexpected algorithm")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise InvalidToken("token has no key id")
        key = await self._key(kid)
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        roles = claims.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise InvalidToken("roles claim is malformed")
        return Principal(subject=str(claims["sub"]), roles=frozenset(roles), claims=claims)

    async def _key(self, kid: str) -> jwt.PyJWK:
        if self._http is not None:
            now = time.monotonic()
            stale = now - self._loaded_at > self._max_age
            if (kid not in self._keys or stale) and not await self._refresh():
                if kid not in self._keys:
                    raise KeysUnavailable("the signing keys could not be fetched")
                # authz is unreachable: keep trusting the keys we had until it answers again.
                log.warning("jwks is stale and could not be refreshed")
        key = self._keys.get(kid)
        if key is None:
            raise InvalidToken("unknown signing key")
        return key

    async def _refresh(self) -> bool:
        """Fetch the JWKS unless a fetch happened lately; returns whether the keys are usable."""
        assert self._http is not None
        async with self._refresh_lock:
            now = time.monotonic()
            if now - self._attempted_at < self._refresh_interval:
                return bool(self._keys)
            self._attempted_at = now
            try:
                response = await self._http.get(self._jwks_url)
                response.raise_for_status()
                self._load(response.json())
            except (httpx.HTTPError, jwt.PyJWTError, ValueError) as exc:
                log.warning("jwks fetch failed", error=repr(exc))
                return False
            return True

    def replace_keys(self, jwks: dict[str, Any]) -> None:
        """For the issuer, whose keys change when its key directory is rotated."""
        self._load(jwks)

    def _load(self, jwks: dict[str, Any]) -> None:
        key_set = jwt.PyJWKSet.from_dict(jwks)
        self._keys = {k.key_id: k for k in key_set.keys if k.key_id}
        self._loaded_at = time.monotonic()


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


async def require_principal(request: Request) -> Principal:
    """The caller's verified identity, or a 401. Needs `app.state.jwt_verifier`."""
    token = bearer_token(request)
    if token is None:
        raise ApiError(
            401,
            "unauthorized",
            "A bearer token is required.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    verifier: JwtVerifier = request.app.state.jwt_verifier
    try:
        return await verifier.verify(token)
    except KeysUnavailable as exc:
        raise ApiError(
            503,
            "unavailable",
            "Sign-in cannot be checked right now; try again.",
            headers={"Retry-After": "2"},
        ) from exc
    except InvalidToken as exc:
        log.info("token rejected", reason=str(exc))
        raise ApiError(
            401,
            "invalid_token",
            "The access token is invalid or expired.",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ) from exc
