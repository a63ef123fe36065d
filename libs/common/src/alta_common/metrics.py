"""Prometheus metrics: one registry per app, served at GET /metrics.

Each app gets its own `CollectorRegistry` (made in `create_service_app`) rather than
prometheus-client's process-wide default: tests build many apps in one process, and a metric
registered twice in the default registry is an error.
"""

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response

log = structlog.get_logger("alta.metrics")

# Values read at scrape time (queue depths, outbox lag) must not hold up the scrape for long.
REFRESH_TIMEOUT_SECONDS = 2.0

Refresher = Callable[[], Awaitable[None]]


class ServiceMetrics:
    """The app's registry, its HTTP metrics, and the gauges refreshed when scraped."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_request_duration = Histogram(
            "alta_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self._refreshers: list[Refresher] = []

    def refresh_on_scrape(self, refresher: Refresher) -> None:
        """Run `refresher` before each scrape (e.g. to read a queue depth into a gauge)."""
        self._refreshers.append(refresher)

    async def render(self) -> bytes:
        results = await asyncio.gather(
            *(asyncio.wait_for(r(), REFRESH_TIMEOUT_SECONDS) for r in self._refreshers),
            return_exceptions=True,
        )
        for result in results:
            # A gauge that could not be refreshed keeps its last value; the scrape goes on.
            if isinstance(result, Exception):
                log.warning("metric refresh failed", error=repr(result))
        return generate_latest(self.registry)


async def metrics_endpoint(request: Request) -> Response:
    metrics: ServiceMetrics = request.app.state.metrics
    return Response(await metrics.render(), media_type=CONTENT_TYPE_LATEST)


class ConsumerMetrics:
    """What an SQS consumer did with the messages of its queue."""

    def __init__(self, registry: CollectorRegistry, queue: str) -> None:
        self.queue = queue
        labels = ["queue"]
        self.received = Counter(
            "alta_sqs_messages_received_total",
            "Messages received from the queue (redeliveries included).",
            labels,
            registry=registry,
        ).labels(queue)
        self.processed = Counter(
            "alta_sqs_messages_processed_total",
            "Messages handled successfully and deleted.",
            labels,
            registry=registry,
        ).labels(queue)
        failed = Counter(
            "alta_sqs_messages_failed_total",
            "Messages not handled: retried later, dead-lettered, or released at shutdown.",
            [*labels, "outcome"],
            registry=registry,
        )
        self.retried = failed.labels(queue, "retry")
        self.dead_lettered = failed.labels(queue, "dead_letter")
        self.released = failed.labels(queue, "released")
        self.visibility_extensions = Counter(
            "alta_sqs_visibility_extensions_total",
            "Heartbeats that extended the visibility of a message still being handled.",
            labels,
            registry=registry,
        ).labels(queue)
        self.dead_letter_depth = Gauge(
            "alta_sqs_dead_letter_messages",
            "Approximate number of messages in the queue's dead-letter queue.",
            labels,
            registry=registry,
        ).labels(queue)
