"""The email sender process: the SQS consumer, plus /healthz and /readyz."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette

from alta_common.access import open_access_control
from alta_common.db import apply_migrations, check_database, open_pool
from alta_common.logging import configure_logging
from alta_common.metrics import ConsumerMetrics
from alta_common.service import create_service_app
from alta_common.sqs import SqsConsumer, open_sqs_client, queue_url
from alta_email_sender import deliveries_api
from alta_email_sender.emails import EmailComposer
from alta_email_sender.handler import EmailEventHandler, EmailMetrics
from alta_email_sender.mailer import Mailer
from alta_email_sender.repository import DeliveryRepository
from alta_email_sender.settings import Settings

SERVICE = "email_sender"
# A message whose handling runs past this many visibility timeouts is no longer kept hidden:
# the send takes at most a third of one, and recording a sent email through a database outage
# (the only long wait) is given all but one of them, so something is stuck and another
# replica may retry.
MAX_HANDLING_VISIBILITY_TIMEOUTS = 10
RECORD_LIMIT_VISIBILITY_TIMEOUTS = MAX_HANDLING_VISIBILITY_TIMEOUTS - 1


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    configure_logging(SERVICE, settings.log_level)
    return create_service_app(settings, routes=deliveries_api.routes, lifespan=lifespan)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    if settings.run_migrations_on_startup:
        await apply_migrations(
            settings.database_url.get_secret_value(),
            schema=SERVICE,
            package="alta_email_sender.migrations",
        )
    async with (
        open_pool(settings, name=SERVICE) as pool,
        open_sqs_client(settings) as sqs,
        open_access_control(app, settings),
    ):
        app.state.deliveries = DeliveryRepository(pool)
        email_queue = await queue_url(sqs, settings.email_queue_name)
        consumer = SqsConsumer(
            sqs,
            queue_url=email_queue,
            dead_letter_queue_url=await queue_url(sqs, settings.email_dlq_name),
            handler=EmailEventHandler(
                composer=EmailComposer(
                    public_url=settings.public_url,
                    sender=settings.email_from,
                ),
                mailer=Mailer(settings),
                deliveries=app.state.deliveries,
                claim_seconds=settings.sqs_visibility_timeout_seconds,
                send_timeout_seconds=settings.smtp_timeout_seconds,
                record_limit_seconds=RECORD_LIMIT_VISIBILITY_TIMEOUTS
                * settings.sqs_visibility_timeout_seconds,
                metrics=EmailMetrics(app.state.metrics.registry),
            ),
            pollers=settings.consumer_pollers,
            wait_seconds=settings.sqs_wait_seconds,
            backoff_base_seconds=settings.retry_backoff_base_seconds,
            visibility_timeout_seconds=settings.sqs_visibility_timeout_seconds,
            max_handling_seconds=MAX_HANDLING_VISIBILITY_TIMEOUTS
            * settings.sqs_visibility_timeout_seconds,
            grace_seconds=settings.graceful_timeout_seconds,
            metrics=ConsumerMetrics(app.state.metrics.registry, settings.email_queue_name),
        )
        app.state.metrics.refresh_on_scrape(consumer.refresh_dead_letter_depth)
        consuming = asyncio.create_task(consumer.run(), name="email-consumer")
        app.state.draining.on_drain(consumer.stop)

        async def check_sqs() -> None:
            await sqs.get_queue_attributes(
                QueueUrl=email_queue, AttributeNames=["ApproximateNumberOfMessages"]
            )

        async def check_consumer() -> None:
            if consuming.done():
                raise RuntimeError("consumer loop is not running")
            consumer.check_healthy()

        app.state.readiness_checks = {
            "database": lambda: check_database(pool),
            "sqs": check_sqs,
            "consumer": check_consumer,
        }
        try:
            yield
        finally:
            # Messages in hand finish within the grace, or are handed back (see SqsConsumer).
            consumer.stop()
            await consuming
