"""Registration service: sign-up, email confirmation, and the outbox relay."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from functools import partial

from prometheus_client import Gauge
from starlette.applications import Starlette

from alta_common.db import apply_migrations, check_database, open_pool
from alta_common.http_client import create_http_client
from alta_common.logging import configure_logging
from alta_common.passwords import PasswordHasher
from alta_common.service import create_service_app
from alta_common.sqs import open_sqs_client
from alta_common.tokens import JwtVerifier
from alta_registration import repository
from alta_registration.outbox_relay import OutboxRelay
from alta_registration.routes import routes
from alta_registration.settings import Settings

SERVICE = "registration"


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    configure_logging(SERVICE, settings.log_level)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if settings.run_migrations_on_startup:
            await apply_migrations(
                settings.database_url.get_secret_value(),
                schema="registration",
                package="alta_registration.migrations",
            )
        async with (
            open_pool(settings, name=SERVICE) as pool,
            open_sqs_client(settings) as sqs,
            create_http_client() as http,
        ):
            relay = OutboxRelay(
                pool,
                sqs,
                {"email": settings.email_queue_name, "crm": settings.crm_queue_name},
                batch_size=settings.outbox_batch_size,
                poll_interval_seconds=settings.outbox_poll_interval_seconds,
            )
            app.state.pool = pool
            app.state.password_hasher = PasswordHasher(
                max_concurrent=settings.password_hash_concurrency
            )
            app.state.jwt_verifier = JwtVerifier(
                http,
                jwks_url=settings.authz_jwks_url,
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
            )
            # Only what a request needs: with SQS down, sign-ups still succeed into the outbox.
            app.state.readiness_checks = {"database": partial(check_database, pool)}
            outbox_lag = Gauge(
                "alta_outbox_lag_seconds",
                "Age of the oldest outbox row not yet published to SQS (0: outbox empty).",
                registry=app.state.metrics.registry,
            )

            async def refresh_outbox_lag() -> None:
                async with pool.connection() as conn:
                    outbox_lag.set(await repository.outbox_lag_seconds(conn))

            app.state.metrics.refresh_on_scrape(refresh_outbox_lag)
            relay_task = asyncio.create_task(relay.run(), name="outbox-relay")
            # At SIGTERM the relay finishes the batch in hand and stops; the rest stays queued.
            app.state.draining.on_drain(relay.stop)
            try:
                yield
            finally:
                relay.stop()
                # A batch stuck on an unreachable SQS is cut off at the grace: its transaction
                # rolls back and the rows wait for the next replica (published at most twice,
                # which the consumers' idempotency absorbs).
                _, unfinished = await asyncio.wait(
                    {relay_task}, timeout=settings.graceful_timeout_seconds
                )
                for task in unfinished:
                    task.cancel()
                    with suppress(asyncio.CancelledError):
                        await task

    return create_service_app(settings, routes=routes, lifespan=lifespan)
