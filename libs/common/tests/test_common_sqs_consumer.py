"""SqsConsumer against a real SQS API (moto server): shutdown, release and heartbeat."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiobotocore.session import get_session
from prometheus_client import CollectorRegistry

from alta_common.metrics import ConsumerMetrics
from alta_common.sqs import ReceivedMessage, SqsConsumer
from alta_devstack.sqs import create_queues


@dataclass
class Queue:
    client: Any
    url: str
    dlq_url: str

    async def publish(self, body: str) -> None:
        await self.client.send_message(QueueUrl=self.url, MessageBody=body)

    async def receive(self, wait_seconds: int) -> list[str]:
        response = await self.client.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
        )
        return [m["Body"] for m in response.get("Messages", [])]

    async def counts(self) -> tuple[int, int]:
        """(visible, in flight) messages."""
        response = await self.client.get_queue_attributes(
            QueueUrl=self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )
        attributes = response["Attributes"]
        return (
            int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        )


async def make_queue(endpoint: str, client: Any, visibility_timeout: int) -> Queue:
    name = f"c{uuid.uuid4().hex[:12]}"
    urls = (
        await create_queues(
            endpoint, [name], max_receive_count=5, visibility_timeout=visibility_timeout
        )
    )[name]
    return Queue(client, urls.url, urls.dlq_url)


@pytest.fixture
async def sqs_client(sqs_endpoint: str) -> AsyncIterator[Any]:
    async with get_session().create_client(
        "sqs", region_name="us-east-1", endpoint_url=sqs_endpoint
    ) as client:
        yield client


def consumer_for(queue: Queue, handler: Any, registry: CollectorRegistry, **options: Any) -> Any:
    return SqsConsumer(
        queue.client,
        queue_url=queue.url,
        dead_letter_queue_url=queue.dlq_url,
        handler=handler,
        metrics=ConsumerMetrics(registry, "test"),
        **options,
    )


def counted(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, {"queue": "test", **labels}) or 0.0


async def test_stop_during_a_long_poll_ends_the_poll_at_once(
    sqs_endpoint: str, sqs_client: Any
) -> None:
    queue = await make_queue(sqs_endpoint, sqs_client, visibility_timeout=30)

    async def never_called(message: ReceivedMessage) -> None:
        raise AssertionError("no message was published")

    consumer = consumer_for(queue, never_called, CollectorRegistry(), wait_seconds=20)
    running = asyncio.create_task(consumer.run())
    await asyncio.sleep(1)  # the long poll is open now
    stopped_at = time.monotonic()
    consumer.stop()
    await asyncio.wait_for(running, timeout=15)
    # Well short of the 20 s the poll would otherwise have waited.
    assert time.monotonic() - stopped_at < 10


async def test_stop_mid_message_hands_back_what_cannot_finish_in_the_grace(
    sqs_endpoint: str, sqs_client: Any
) -> None:
    queue = await make_queue(sqs_endpoint, sqs_client, visibility_timeout=60)
    registry = CollectorRegistry()
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def stuck(message: ReceivedMessage) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    consumer = consumer_for(queue, stuck, registry, wait_seconds=1, grace_seconds=0.5)
    running = asyncio.create_task(consumer.run())
    await queue.publish("stuck")
    await asyncio.wait_for(started.wait(), timeout=20)
    consumer.stop()
    await asyncio.wait_for(running, timeout=10)

    assert cancelled.is_set()
    # Visible again now, not after the queue's 60 s visibility timeout.
    assert await queue.receive(wait_seconds=2) == ["stuck"]
    assert counted(registry, "alta_sqs_messages_failed_total", outcome="released") == 1
    assert counted(registry, "alta_sqs_messages_processed_total") == 0


async def test_stop_mid_message_lets_work_finish_within_the_grace_and_deletes_it(
    sqs_endpoint: str, sqs_client: Any
) -> None:
    queue = await make_queue(sqs_endpoint, sqs_client, visibility_timeout=60)
    registry = CollectorRegistry()
    started = asyncio.Event()
    done: list[str] = []

    async def slow(message: ReceivedMessage) -> None:
        started.set()
        await asyncio.sleep(1.5)
        done.append(message.body)

    consumer = consumer_for(queue, slow, registry, wait_seconds=1, grace_seconds=15)
    running = asyncio.create_task(consumer.run())
    await queue.publish("slow")
    await asyncio.wait_for(started.wait(), timeout=20)
    consumer.stop()
    await asyncio.wait_for(running, timeout=20)

    assert done == ["slow"]
    assert await queue.counts() == (0, 0)
    assert counted(registry, "alta_sqs_messages_processed_total") == 1


async def test_heartbeat_keeps_a_slow_message_from_a_second_consumer(
    sqs_endpoint: str, sqs_client: Any
) -> None:
    queue = await make_queue(sqs_endpoint, sqs_client, visibility_timeout=2)
    registry = CollectorRegistry()
    handled: list[str] = []

    async def slower_than_visibility(message: ReceivedMessage) -> None:
        await asyncio.sleep(5)
        handled.append(message.body)

    consumer = consumer_for(
        queue, slower_than_visibility, registry, wait_seconds=1, visibility_timeout_seconds=2
    )
    running = asyncio.create_task(consumer.run())
    await queue.publish("slow")
    # Another consumer polls meanwhile: without the heartbeat it would get the message after 2 s.
    seen_by_other: list[str] = []
    deadline = time.monotonic() + 15
    while not handled and time.monotonic() < deadline:
        seen_by_other += await queue.receive(wait_seconds=1)
    consumer.stop()
    await asyncio.wait_for(running, timeout=10)

    assert handled == ["slow"]
    assert seen_by_other == []
    assert await queue.counts() == (0, 0)
    assert counted(registry, "alta_sqs_visibility_extensions_total") >= 1


async def test_heartbeat_gives_up_after_the_handling_limit(
    sqs_endpoint: str, sqs_client: Any
) -> None:
    queue = await make_queue(sqs_endpoint, sqs_client, visibility_timeout=2)
    release = asyncio.Event()

    async def stuck(message: ReceivedMessage) -> None:
        await release.wait()

    consumer = consumer_for(
        queue,
        stuck,
        CollectorRegistry(),
        wait_seconds=1,
        visibility_timeout_seconds=2,
        max_handling_seconds=2,
        grace_seconds=1,
    )
    running = asyncio.create_task(consumer.run())
    await queue.publish("stuck")
    # Extended once (at 1 s), then left to expire: another consumer may take it over.
    seen_by_other: list[str] = []
    deadline = time.monotonic() + 20
    while not seen_by_other and time.monotonic() < deadline:
        seen_by_other += await queue.receive(wait_seconds=1)
    release.set()
    consumer.stop()
    await asyncio.wait_for(running, timeout=10)
    assert seen_by_other == ["stuck"]
