"""The dead-letter command of each consumer: list, show and redrive dead-lettered messages.

`python -m alta_<consumer> dlq list|show MESSAGE_ID|redrive (--all | MESSAGE_ID...)`. A redriven
message goes back to its work queue with its body and request id unchanged, so the consumer's
idempotency (its claim on the event) recognises work already done and redoes only the rest.
"""

import argparse
import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from alta_common.settings import SqsSettings
from alta_common.sqs import open_sqs_client, queue_url

# Fields of an event body that `show` never prints: a confirmation token is a credential.
REDACTED_FIELDS = frozenset({"confirmation_token"})
# Receives of the dead-letter queue that return nothing before a listing counts as complete.
EMPTY_ROUNDS = 2


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    receipt_handle: str
    body: str
    reason: str | None
    request_id: str | None

    def summary(self) -> dict[str, Any]:
        """What `list` prints: enough to pick a message, no personal data."""
        event = _event_fields(self.body)
        return {
            "message_id": self.message_id,
            "event_type": event.get("type"),
            "event_id": event.get("event_id"),
            "reason": self.reason,
        }

    def details(self) -> dict[str, Any]:
        event = _event_fields(self.body)
        body: Any = {k: ("***" if k in REDACTED_FIELDS else v) for k, v in event.items()}
        return {**self.summary(), "request_id": self.request_id, "body": body or self.body}


async def peek(client: Any, dlq_url: str, *, limit: int = 1000) -> list[DeadLetter]:
    """Every message of the dead-letter queue, left where it is (visible again at once)."""
    seen: dict[str, DeadLetter] = {}
    empty_rounds = 0
    while empty_rounds < EMPTY_ROUNDS and len(seen) < limit:
        # Visibility 0: the messages stay available to the next receive and to a redrive.
        batch = await _receive(client, dlq_url, visibility_timeout=0)
        new = [m for m in batch if m.message_id not in seen]
        empty_rounds = 0 if new else empty_rounds + 1
        seen |= {m.message_id: m for m in new}
    return list(seen.values())[:limit]


async def redrive(
    client: Any, dlq_url: str, target_url: str, message_ids: set[str] | None
) -> list[str]:
    """Move the given messages (all if None) back to `target_url`; returns the ids moved."""
    moved: list[str] = []
    empty_rounds = 0
    while empty_rounds < EMPTY_ROUNDS:
        # Held for 30 s while we move them; a message not ours is given back at once.
        batch = await _receive(client, dlq_url, visibility_timeout=30)
        empty_rounds = 0 if batch else empty_rounds + 1
        for message in batch:
            if message_ids is not None and message.message_id not in message_ids:
                await client.change_message_visibility(
                    QueueUrl=dlq_url, ReceiptHandle=message.receipt_handle, VisibilityTimeout=0
                )
                continue
            attributes = {}
            if message.request_id:
                attributes["request_id"] = {"DataType": "String", "StringValue": message.request_id}
            # Sent before the delete: a crash in between leaves a copy in both queues, which
            # the consumer's idempotency absorbs; the other order could lose the message.
            await client.send_message(
                QueueUrl=target_url, MessageBody=message.body, MessageAttributes=attributes
            )
            await client.delete_message(QueueUrl=dlq_url, ReceiptHandle=message.receipt_handle)
            moved.append(message.message_id)
        if message_ids is not None and message_ids <= set(moved):
            break
    return moved


async def _receive(client: Any, url: str, *, visibility_timeout: int) -> list[DeadLetter]:
    response = await client.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=1,
        VisibilityTimeout=visibility_timeout,
        MessageAttributeNames=["All"],
    )
    letters = []
    for raw in response.get("Messages", []):
        attributes = raw.get("MessageAttributes", {})
        letters.append(
            DeadLetter(
                message_id=raw["MessageId"],
                receipt_handle=raw["ReceiptHandle"],
                body=raw["Body"],
                reason=attributes.get("dead_letter_reason", {}).get("StringValue"),
                request_id=attributes.get("request_id", {}).get("StringValue"),
            )
        )
    return letters


def _event_fields(body: str) -> dict[str, Any]:
    try:
        event = json.loads(body)
    except ValueError:
        return {}
    return event if isinstance(event, dict) else {}


def main(
    argv: Sequence[str], *, settings: SqsSettings, queue_name: str, dlq_name: str, prog: str
) -> int:
    parser = argparse.ArgumentParser(
        prog=f"{prog} dlq", description="Dead-lettered messages of this consumer."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="one JSON line per dead-lettered message")
    show = commands.add_parser("show", help="one message in full (tokens redacted)")
    show.add_argument("message_id")
    again = commands.add_parser("redrive", help="move messages back to the work queue")
    which = again.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every dead-lettered message")
    which.add_argument("message_ids", nargs="*", default=[], metavar="MESSAGE_ID")
    args = parser.parse_args(argv)
    return asyncio.run(_run(args, settings, queue_name, dlq_name))


async def _run(
    args: argparse.Namespace, settings: SqsSettings, queue_name: str, dlq_name: str
) -> int:
    async with open_sqs_client(settings) as client:
        dlq_url = await queue_url(client, dlq_name, wait_seconds=5)
        if args.command == "list":
            for letter in await peek(client, dlq_url):
                print(json.dumps(letter.summary()))
            return 0
        if args.command == "show":
            found = [m for m in await peek(client, dlq_url) if m.message_id == args.message_id]
            if not found:
                print(f"no message {args.message_id} in {dlq_name}")
                return 1
            print(json.dumps(found[0].details(), indent=2))
            return 0
        target_url = await queue_url(client, queue_name, wait_seconds=5)
        wanted = None if args.all else set(args.message_ids)
        moved = await redrive(client, dlq_url, target_url, wanted)
        print(json.dumps({"redriven": moved}))
        missing = (wanted or set()) - set(moved)
        if missing:
            print(f"not found in {dlq_name}: {', '.join(sorted(missing))}")
            return 1
        return 0
