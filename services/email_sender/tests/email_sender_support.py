"""Helpers for the email sender tests: events, polling, and the queues seen from outside."""

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from alta_common.events import RegistrationEvent
from alta_devstack.servers import ServerThread

StartEmailSender = Callable[..., ServerThread]


CONFIRMATION_EVENT_TYPES = ["registration.created", "registration.confirmation_reissued"]


def make_event(type: str = "registration.created", **overrides: Any) -> RegistrationEvent:
    now = datetime.now(UTC)
    confirms = type in CONFIRMATION_EVENT_TYPES
    fields: dict[str, Any] = {
        "event_id": uuid4(),
        "type": type,
        "occurred_at": now,
        "user_id": uuid4(),
        "email": f"user-{uuid4().hex[:8]}@example.org",
        "name": "Ada Lovelace",
        "status": "pending",
        "registered_at": now,
        "confirmation_token": "tok-" + uuid4().hex if confirms else None,
        "confirmation_expires_at": now + timedelta(hours=24) if confirms else None,
    }
    fields.update(overrides)
    return RegistrationEvent.model_validate(fields)


async def eventually(
    check: Callable[[], Any],
    *,
    within: float = 20.0,
    interval: float = 0.1,
) -> Any:
    """Poll `check` until it returns something truthy; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {within}s")
        await asyncio.sleep(interval)


class Queues:
    """The test's email queue and its dead-letter queue, seen from outside the service."""

    def __init__(self, client: Any, url: str, dlq_url: str) -> None:
        self.client = client
        self.url = url
        self.dlq_url = dlq_url

    async def publish(self, *bodies: str) -> None:
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies)]
        response = await self.client.send_message_batch(QueueUrl=self.url, Entries=entries)
        assert not response.get("Failed")

    async def is_drained(self) -> bool:
        """Nothing left to deliver: every message was deleted or dead-lettered."""
        response = await self.client.get_queue_attributes(
            QueueUrl=self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )
        return all(int(count) == 0 for count in response["Attributes"].values())

    async def dead_letters(self) -> list[str]:
        return [body for body, _ in await self.dead_letters_with_reasons()]

    async def dead_letters_with_reasons(self) -> list[tuple[str, str | None]]:
        """Bodies, with the reason the service gave when it dead-lettered one itself."""
        response = await self.client.receive_message(
            QueueUrl=self.dlq_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            MessageAttributeNames=["All"],
        )
        return [
            (
                message["Body"],
                message.get("MessageAttributes", {})
                .get("dead_letter_reason", {})
                .get("StringValue"),
            )
            for message in response.get("Messages", [])
        ]
