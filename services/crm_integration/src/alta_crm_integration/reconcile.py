"""`python -m alta_crm_integration reconcile`: re-enqueue every contact the CRM never got.

It compares registrations (registration's read-only view) with the CRM-sync records and puts
the missing events back on the `crm` queue. Each event carries the id registration gave it
(`crm_event_id`), so a contact whose original event is merely late is still sent only once:
the claim and the CRM's Idempotency-Key are the same for both copies.
"""

import argparse
import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from alta_common.db import open_pool
from alta_common.events import EventType, RegistrationEvent, crm_event_id
from alta_common.sqs import OutgoingMessage, open_sqs_client, queue_url, send_batch
from alta_crm_integration.repository import UnsyncedContact, unsynced_contacts
from alta_crm_integration.settings import Settings

SQS_BATCH = 10


def events_for(contact: UnsyncedContact) -> list[RegistrationEvent]:
    types: list[EventType] = []
    if contact.create_missing:
        types.append("registration.created")
    if contact.confirm_missing:
        types.append("registration.confirmed")
    return [
        RegistrationEvent(
            event_id=crm_event_id(contact.user_id, event_type),
            type=event_type,
            occurred_at=datetime.now(UTC),
            user_id=contact.user_id,
            email=contact.email,
            name=contact.name,
            # The create reports the sign-up as it was; the confirmation then updates it.
            status="pending" if event_type == "registration.created" else "confirmed",
            registered_at=contact.registered_at,
        )
        for event_type in types
    ]


async def reconcile(settings: Settings, *, settle: timedelta, dry_run: bool) -> dict[str, int]:
    async with open_pool(settings, name="crm_integration-reconcile") as pool:
        contacts = await unsynced_contacts(pool, settle=settle)
    events = [event for contact in contacts for event in events_for(contact)]
    if dry_run or not events:
        return {"contacts": len(contacts), "events": len(events), "enqueued": 0}
    enqueued = 0
    async with open_sqs_client(settings) as sqs:
        url = await queue_url(sqs, settings.crm_queue_name, wait_seconds=5)
        for start in range(0, len(events), SQS_BATCH):
            batch = [
                OutgoingMessage(id=str(i), body=event.model_dump_json())
                for i, event in enumerate(events[start : start + SQS_BATCH])
            ]
            accepted = await send_batch(sqs, url, batch)
            if len(accepted) < len(batch):
                # Running the command again sends the rest: what is enqueued twice is sent once.
                raise RuntimeError(f"SQS refused {len(batch) - len(accepted)} messages")
            enqueued += len(accepted)
    return {"contacts": len(contacts), "events": len(events), "enqueued": enqueued}


def main(argv: Sequence[str], settings: Settings) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m alta_crm_integration reconcile",
        description="Re-enqueue every registration the CRM never got.",
    )
    parser.add_argument(
        "--settle-seconds",
        type=float,
        default=300.0,
        help="leave out registrations younger than this, still on their way (default 300)",
    )
    parser.add_argument("--dry-run", action="store_true", help="count, enqueue nothing")
    args = parser.parse_args(argv)
    result = asyncio.run(
        reconcile(settings, settle=timedelta(seconds=args.settle_seconds), dry_run=args.dry_run)
    )
    print(json.dumps(result))
    return 0
