"""Publishes outbox rows to SQS. Safe with any number of replicas running it at once."""

import asyncio
import random
from collections import defaultdict
from contextlib import suppress
from typing import Any

import structlog
from psycopg_pool import AsyncConnectionPool

from alta_common.sqs import OutgoingMessage, queue_url, send_batch
from alta_registration import repository

log = structlog.get_logger("alta.registration.outbox")


class OutboxRelay:
    """Moves committed events from the outbox to their queues.

    Rows are locked, sent, and deleted in one transaction: if SQS is down or the process dies
    before the commit, the rows stay and are sent again later, so an event may be published
    twice but never lost. The consumers are idempotent per event id.
    """

    def __init__(
        self,
        pool: AsyncConnectionPool,
        sqs: Any,
        queue_names: dict[str, str],
        *,
        batch_size: int,
        poll_interval_seconds: float,
    ) -> None:
        self.pool = pool
        self.sqs = sqs
        self.queue_names = queue_names
        # Resolved on first use, so a pod starting during an SQS outage still takes sign-ups.
        self._queue_urls: dict[str, str] = {}
        self.batch_size = batch_size
        self.poll_interval_seconds = poll_interval_seconds
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                published = await self.relay_once()
                failures = 0
            except Exception as exc:
                failures += 1
                log.warning("outbox relay failed", error=repr(exc), failures=failures)
                published = 0
            # Straight on only while full batches go out; rows SQS refused wait for the next round.
            if published < self.batch_size:
                delay = self.poll_interval_seconds * min(2**failures, 60)
                with suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._stopping.wait(),
                        delay * random.uniform(0.8, 1.2),  # noqa: S311
                    )

    async def relay_once(self) -> int:
        """Publish one batch; returns how many rows were published."""
        async with self.pool.connection() as conn, conn.transaction():
            rows = await repository.claim_outbox_batch(conn, self.batch_size)
            by_queue: dict[str, list[repository.OutboxRow]] = defaultdict(list)
            for row in rows:
                by_queue[row.queue].append(row)
            published: list[int] = []
            for queue, queue_rows in by_queue.items():
                accepted = await send_batch(
                    self.sqs,
                    await self._queue_url(queue),
                    [OutgoingMessage(str(r.id), r.payload, r.request_id) for r in queue_rows],
                )
                published.extend(int(entry_id) for entry_id in accepted)
            await repository.delete_published(conn, published)
        if len(published) < len(rows):
            log.warning("outbox rows not accepted by SQS", refused=len(rows) - len(published))
        return len(published)

    async def _queue_url(self, queue: str) -> str:
        if queue not in self._queue_urls:
            self._queue_urls[queue] = await queue_url(
                self.sqs, self.queue_names[queue], wait_seconds=0
            )
        return self._queue_urls[queue]
