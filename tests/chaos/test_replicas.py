"""Several replicas at once: the same event twice and to two replicas."""

import asyncio
from collections.abc import Callable

import pytest
from aiobotocore.session import get_session

from .harness import Chaos, Counts

pytestmark = pytest.mark.timeout(400)

Invariants = Callable[..., Counts]
CLEAN_EXIT = (0, -15)


def test_the_same_event_twice_to_two_replicas_at_once(
    scenario: Chaos, invariants: Invariants
) -> None:
    chaos = scenario
    chaos.stack.stop("email_sender", "crm_integration")
    chaos.sign_up(4)
    chaos.wait_for_outbox()
    endpoint = chaos.stack.env["SQS_ENDPOINT_URL"]
    for queue in chaos.queues.values():
        asyncio.run(_duplicate_every_message(endpoint, queue.url))
    chaos.stack.start("email_sender", "crm_integration")
    extra = [chaos.stack.add_replica("email_sender"), chaos.stack.add_replica("crm_integration")]
    try:
        invariants(chaos)
    finally:
        chaos.stack.stop(*extra)


async def _duplicate_every_message(endpoint: str, url: str) -> None:
    """Send a second copy of every message in the queue, leaving the originals in place."""
    async with get_session().create_client("sqs", endpoint_url=endpoint) as sqs:
        seen: set[str] = set()
        while True:
            response = await sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=1
            )
            fresh = [m for m in response.get("Messages", []) if m["MessageId"] not in seen]
            if not fresh:
                return
            for message in fresh:
                seen.add(message["MessageId"])
                copy = await sqs.send_message(QueueUrl=url, MessageBody=message["Body"])
                seen.add(copy["MessageId"])
