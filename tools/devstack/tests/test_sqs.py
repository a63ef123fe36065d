from collections.abc import AsyncIterator

import pytest
from aiobotocore.session import get_session
from types_aiobotocore_sqs import SQSClient

from alta_devstack.sqs import QueueUrls, create_queues


@pytest.fixture
async def sqs(sqs_endpoint: str) -> AsyncIterator[SQSClient]:
    async with get_session().create_client("sqs", endpoint_url=sqs_endpoint) as client:
        yield client


async def receive_bodies(sqs: SQSClient, queue_url: str) -> list[str]:
    response = await sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0)
    return [message["Body"] for message in response.get("Messages", [])]


async def test_sent_message_is_received(sqs: SQSClient, sqs_queues: dict[str, QueueUrls]) -> None:
    await sqs.send_message(QueueUrl=sqs_queues["email"].url, MessageBody="hello")
    assert await receive_bodies(sqs, sqs_queues["email"].url) == ["hello"]
    assert await receive_bodies(sqs, sqs_queues["crm"].url) == []


async def test_message_received_too_often_moves_to_dlq(sqs_endpoint: str, sqs: SQSClient) -> None:
    # No visibility timeout: a received but undeleted message is at once receivable again.
    queues = await create_queues(
        sqs_endpoint, ["dlq-test"], max_receive_count=2, visibility_timeout=0
    )
    queue = queues["dlq-test"]
    await sqs.send_message(QueueUrl=queue.url, MessageBody="poison")
    assert await receive_bodies(sqs, queue.url) == ["poison"]
    assert await receive_bodies(sqs, queue.url) == ["poison"]
    assert await receive_bodies(sqs, queue.url) == []
    assert await receive_bodies(sqs, queue.dlq_url) == ["poison"]
