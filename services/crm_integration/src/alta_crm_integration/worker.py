"""The background work of the service: the `crm` queue consumer, for the app's lifetime."""

import asyncio
from contextlib import suppress
from typing import Any

import structlog
from prometheus_client import CollectorRegistry

from alta_common.metrics import ConsumerMetrics
from alta_common.sqs import MessageHandler, SqsConsumer, queue_url
from alta_crm_integration.settings import Settings

log = structlog.get_logger("alta.crm_integration")


class ConsumerWorker:
    """Finds the queues (waiting for SQS if need be), then runs the consumer until stopped."""

    def __init__(
        self, sqs: Any, settings: Settings, handler: MessageHandler, registry: CollectorRegistry
    ) -> None:
        self._sqs = sqs
        self._settings = settings
        self._handler = handler
        self._metrics = ConsumerMetrics(registry, settings.crm_queue_name)
        self._consumer: SqsConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self.queue_url: str | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="crm-consumer")

    def stop_polling(self) -> None:
        """Take no more messages (at SIGTERM); those in hand carry on."""
        if self._consumer is not None:
            self._consumer.stop()

    async def refresh_dead_letter_depth(self) -> None:
        if self._consumer is not None:
            await self._consumer.refresh_dead_letter_depth()

    async def stop(self, timeout_seconds: float) -> None:
        """Stops polling; the consumer finishes or releases what it holds within its grace,
        and is cancelled if it still runs after `timeout_seconds`."""
        if self._task is None:
            return
        if self._consumer is not None:
            self._consumer.stop()
            await asyncio.wait({self._task}, timeout=timeout_seconds)
        self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task

    async def check_queue(self) -> None:
        """Readiness: the queue answers."""
        if self.queue_url is None:
            raise RuntimeError("queue not resolved yet")
        await self._sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["VisibilityTimeout"]
        )

    async def check_consuming(self) -> None:
        """Readiness: the consumer loop runs and its receives succeed."""
        if self._consumer is None or self._task is None or self._task.done():
            raise RuntimeError("consumer is not running")
        self._consumer.check_healthy()

    async def _run(self) -> None:
        settings = self._settings
        url = await queue_url(self._sqs, settings.crm_queue_name)
        dead_letter_url = await queue_url(self._sqs, settings.crm_dlq_name)
        self.queue_url = url
        await self._warn_if_visibility_is_shorter(url)
        self._consumer = SqsConsumer(
            self._sqs,
            queue_url=url,
            dead_letter_queue_url=dead_letter_url,
            handler=self._handler,
            pollers=settings.consumer_pollers,
            wait_seconds=settings.sqs_wait_seconds,
            backoff_base_seconds=settings.retry_backoff_base_seconds,
            visibility_timeout_seconds=settings.sqs_visibility_timeout_seconds,
            # Handling is bounded by the handling budget (see Settings); past twice the
            # visibility timeout something is stuck and another replica should take over.
            max_handling_seconds=2 * settings.sqs_visibility_timeout_seconds,
            grace_seconds=settings.graceful_timeout_seconds,
            metrics=self._metrics,
        )
        log.info("consuming", queue=settings.crm_queue_name, pollers=settings.consumer_pollers)
        await self._consumer.run()

    async def _warn_if_visibility_is_shorter(self, url: str) -> None:
        # Our retry budget and delivery leases assume the queue hides a message at least as long.
        response = await self._sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["VisibilityTimeout"]
        )
        actual = int(response["Attributes"]["VisibilityTimeout"])
        if actual < self._settings.sqs_visibility_timeout_seconds:
            log.warning(
                "queue visibility timeout is shorter than configured",
                queue_visibility_timeout=actual,
                sqs_visibility_timeout_seconds=self._settings.sqs_visibility_timeout_seconds,
            )
