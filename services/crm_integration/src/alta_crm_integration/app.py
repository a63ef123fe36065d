"""crm_integration: reports sign-ups from the `crm` queue to the CRM, within its rate limit.

Its HTTP port serves /healthz, /readyz and the admin-only /deliveries/lookup.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette

from alta_common.access import open_access_control
from alta_common.db import apply_migrations, check_database, open_pool
from alta_common.http_client import create_http_client
from alta_common.logging import configure_logging
from alta_common.service import create_service_app
from alta_common.sqs import open_sqs_client
from alta_crm_integration import deliveries_api
from alta_crm_integration.crm_client import CrmClient
from alta_crm_integration.handler import CrmMetrics, CrmSyncHandler
from alta_crm_integration.rate_limiter import SharedRateLimiter
from alta_crm_integration.repository import DeliveryRepository
from alta_crm_integration.settings import Settings
from alta_crm_integration.worker import ConsumerWorker

SERVICE = "crm_integration"
# Every replica reserves its send slots in this one row.
RATE_LIMIT_NAME = "crm"


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    configure_logging(SERVICE, settings.log_level)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if settings.run_migrations_on_startup:
            await apply_migrations(
                settings.database_url.get_secret_value(),
                schema=SERVICE,
                package="alta_crm_integration.migrations",
            )
        async with (
            open_pool(settings, name=SERVICE) as pool,
            open_sqs_client(settings) as sqs,
            create_http_client(
                base_url=settings.crm_url,
                timeout_seconds=settings.crm_timeout_seconds,
                max_connections=settings.crm_max_in_flight,
            ) as http,
            open_access_control(app, settings),
        ):
            app.state.deliveries = DeliveryRepository(pool)
            handler = CrmSyncHandler(
                repository=app.state.deliveries,
                limiter=SharedRateLimiter(
                    pool,
                    name=RATE_LIMIT_NAME,
                    rate_per_second=settings.crm_rate_limit_per_second,
                    jitter_allowance_seconds=settings.crm_rate_limit_jitter_allowance_seconds,
                    max_in_flight=settings.crm_max_in_flight,
                ),
                crm=CrmClient(
                    http,
                    api_token=settings.crm_api_token,
                    timeout_seconds=settings.crm_timeout_seconds,
                ),
                settings=settings,
                metrics=CrmMetrics(app.state.metrics.registry),
            )
            worker = ConsumerWorker(sqs, settings, handler, app.state.metrics.registry)
            app.state.metrics.refresh_on_scrape(worker.refresh_dead_letter_depth)
            app.state.draining.on_drain(worker.stop_polling)
            app.state.delivery_stats = handler.stats
            app.state.readiness_checks = {
                "database": lambda: check_database(pool),
                "sqs": worker.check_queue,
                "consumer": worker.check_consuming,
            }
            worker.start()
            try:
                yield
            finally:
                # Messages in hand finish within the grace or are handed back to SQS.
                await worker.stop(timeout_seconds=settings.graceful_timeout_seconds + 5)

    return create_service_app(settings, routes=deliveries_api.routes, lifespan=lifespan)
