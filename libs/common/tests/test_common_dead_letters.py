"""The dead-letter tools against a real SQS API (moto server): list leaves, redrive moves."""

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiobotocore.session import get_session

from alta_common.dead_letters import peek, redrive
from alta_devstack.sqs import QueueUrls, create_queues


@pytest.fixture
async def sqs(sqs_endpoint: str) -> AsyncIterator[Any]:
    async with get_session().create_client(
        "sqs", region_name="us-east-1", endpoint_url=sqs_endpoint
    ) as client:
        yield client


@pytest.fixture
async def queue(sqs_endpoint: str) -> QueueUrls:
    name = f"d{uuid.uuid4().hex[:12]}"
    return (await create_queues(sqs_endpoint, [name]))[name]


async def dead_letter(sqs: Any, queue: QueueUrls, event: dict[str, str]) -> str:
    sent = await sqs.send_message(
        QueueUrl=queue.dlq_url,
        MessageBody=json.dumps(event),
        MessageAttributes={
            "dead_letter_reason": {"DataType": "String", "StringValue": "CRM refused"},
            "request_id": {"DataType": "String", "StringValue": "req-1"},
        },
    )
    return str(sent["MessageId"])


async def bodies(sqs: Any, url: str) -> list[str]:
    response = await sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    return [m["Body"] for m in response.get("Messages", [])]


async def test_list_shows_every_message_and_leaves_it_there(sqs: Any, queue: QueueUrls) -> None:
    first = await dead_letter(sqs, queue, {"type": "registration.created", "event_id": "e1"})
    await dead_letter(
        sqs, queue, {"type": "registration.created", "event_id": "e2", "confirmation_token": "t"}
    )

    letters = await peek(sqs, queue.dlq_url)
    assert sorted(letter.summary()["event_id"] for letter in letters) == ["e1", "e2"]
    [one] = [letter for letter in letters if letter.message_id == first]
    assert one.summary() == {
        "message_id": first,
        "event_type": "registration.created",
        "event_id": "e1",
        "reason": "CRM refused",
    }
    # A confirmation token is a credential: `show` never prints it.
    [two] = [letter for letter in letters if letter.message_id != first]
    assert two.details()["body"]["confirmation_token"] == "***"
    assert len(await peek(sqs, queue.dlq_url)) == 2


async def test_redrive_moves_only_the_chosen_message_with_its_request_id(
    sqs: Any, queue: QueueUrls
) -> None:
    chosen = await dead_letter(sqs, queue, {"event_id": "e1"})
    await dead_letter(sqs, queue, {"event_id": "e2"})

    assert await redrive(sqs, queue.dlq_url, queue.url, {chosen}) == [chosen]

    response = await sqs.receive_message(
        QueueUrl=queue.url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
    )
    [moved] = response["Messages"]
    assert json.loads(moved["Body"]) == {"event_id": "e1"}
    assert moved["MessageAttributes"]["request_id"]["StringValue"] == "req-1"
    assert [json.loads(body) for body in await bodies(sqs, queue.dlq_url)] == [{"event_id": "e2"}]


async def test_redrive_all_empties_the_dead_letter_queue(sqs: Any, queue: QueueUrls) -> None:
    for number in range(12):
        await dead_letter(sqs, queue, {"event_id": f"e{number}"})
    assert len(await redrive(sqs, queue.dlq_url, queue.url, None)) == 12
    assert await peek(sqs, queue.dlq_url) == []
