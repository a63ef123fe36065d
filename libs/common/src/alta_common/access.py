"""Protected endpoints in a service that has no other reason to call authz (the consumers)."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.applications import Starlette

from alta_common.authorization import Authorizer
from alta_common.errors import ApiError
from alta_common.http_client import create_http_client
from alta_common.tokens import JwtVerifier

# An admin page shows at most this many accounts at once.
MAX_LOOKUP_IDS = 100


class AccessSettings(BaseSettings):
    """Mixin: where authz is, and what its tokens must say."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    authz_url: str = "http://127.0.0.1:8001"
    jwt_issuer: str = "alta-authz"
    jwt_audience: str = "alta"


@asynccontextmanager
async def open_access_control(app: Starlette, settings: AccessSettings) -> AsyncIterator[None]:
    """Sets `app.state.jwt_verifier` and `app.state.authorizer` for `require_permission`."""
    async with create_http_client() as http:
        authz_url = settings.authz_url.rstrip("/")
        app.state.jwt_verifier = JwtVerifier(
            http,
            jwks_url=f"{authz_url}/.well-known/jwks.json",
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
        app.state.authorizer = Authorizer(http, authz_url=authz_url)
        yield


def user_ids_of(data: dict[str, Any]) -> list[uuid.UUID]:
    """The `user_ids` list of a delivery lookup, or a 422 saying what is wrong with it."""
    raw = data.get("user_ids")
    if isinstance(raw, list) and 1 <= len(raw) <= MAX_LOOKUP_IDS:
        try:
            return [uuid.UUID(item) for item in raw]
        except (TypeError, ValueError, AttributeError):
            pass
    raise ApiError(
        422,
        "invalid_input",
        f"user_ids must be a list of 1 to {MAX_LOOKUP_IDS} account ids.",
        fields={"user_ids": "Expected a list of account ids."},
    )
