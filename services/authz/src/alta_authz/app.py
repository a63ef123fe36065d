"""authz: password login, sessions (refresh tokens), access tokens, JWKS and the access policy."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from functools import partial

import structlog
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette

from alta_authz import repository
from alta_authz.keys import KeyStore
from alta_authz.routes import routes
from alta_authz.settings import Settings
from alta_common.db import apply_migrations, check_database, open_pool
from alta_common.logging import configure_logging
from alta_common.passwords import PasswordHasher
from alta_common.service import create_service_app
from alta_common.tokens import JwtVerifier

SERVICE = "authz"
log = structlog.get_logger("alta.authz")


async def _reload_keys(keys: KeyStore, verifier: JwtVerifier, interval: float) -> None:
    """Pick up a rotated JWT_KEYS_DIR: Kubernetes rewrites a mounted Secret in place."""
    while True:
        await asyncio.sleep(interval)
        if keys.reload():
            verifier.replace_keys(keys.ring.jwks())


async def _forget_old_failures(pool: AsyncConnectionPool, window: timedelta) -> None:
    while True:
        await asyncio.sleep(window.total_seconds())
        try:
            async with pool.connection() as conn:
                await repository.forget_old_failures(conn, window)
        except Exception as exc:  # the database may be down for a while; try next time
            log.warning("forgetting old login failures failed", error=repr(exc))


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    configure_logging(SERVICE, settings.log_level)
    keys = KeyStore(settings.jwt_keys_dir)

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
            app.state.keys = keys
            app.state.password_hasher = PasswordHasher(
                max_concurrent=settings.password_hash_concurrency
            )
            verifier = JwtVerifier(
                None,
                static_jwks=keys.ring.jwks(),
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
            )
            app.state.jwt_verifier = verifier
            app.state.readiness_checks = {"database": partial(check_database, pool)}
            tasks = [
                asyncio.create_task(
                    _reload_keys(keys, verifier, settings.jwt_keys_reload_seconds),
                    name="reload-jwt-keys",
                ),
                asyncio.create_task(
                    _forget_old_failures(
                        pool, timedelta(seconds=settings.login_failure_window_seconds)
                    ),
                    name="forget-old-login-failures",
                ),
            ]
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with suppress(asyncio.CancelledError):
                        await task

    return create_service_app(settings, routes=routes, lifespan=lifespan)
