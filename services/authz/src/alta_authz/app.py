"""authz: password login, access-token issuing, JWKS and the access policy."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from starlette.applications import Starlette

from alta_authz.keys import load_signing_key
from alta_authz.routes import routes
from alta_authz.settings import Settings
from alta_common.db import apply_migrations, check_database, open_pool
from alta_common.logging import configure_logging
from alta_common.passwords import PasswordHasher
from alta_common.service import create_service_app
from alta_common.tokens import JwtVerifier

SERVICE = "authz"


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    configure_logging(SERVICE, settings.log_level)
    signing_key = load_signing_key(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if settings.run_migrations_on_startup:
            await apply_migrations(
                settings.database_url.get_secret_value(),
                schema="authz",
                package="alta_authz.migrations",
            )
        async with open_pool(settings, name=SERVICE) as pool:
            app.state.pool = pool
            app.state.signing_key = signing_key
            app.state.password_hasher = PasswordHasher(
                max_concurrent=settings.password_hash_concurrency
            )
            app.state.jwt_verifier = JwtVerifier(
                None,
                static_jwks={"keys": [signing_key.public_jwk]},
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
            )
            app.state.readiness_checks = {"database": partial(check_database, pool)}
            yield

    return create_service_app(settings, routes=routes, lifespan=lifespan)
