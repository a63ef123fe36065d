"""Several replicas at once: the same event twice and to two replicas, HTTP services stopped
under load."""

import asyncio
import threading
import time
from collections.abc import Callable

import pytest
from aiobotocore.session import get_session

from .harness import GRACE_SECONDS, Chaos, Counts

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


def test_sigterm_registration_under_sign_up_load(scenario: Chaos, invariants: Invariants) -> None:
    chaos = scenario
    second = chaos.stack.add_replica("registration")
    statuses: list[int] = []
    both = ["registration", second]
    signing_up = threading.Thread(target=lambda: statuses.extend(chaos.sign_up(24, via=both)))
    signing_up.start()
    time.sleep(1.0)
    process = chaos.stack.terminate("registration")
    assert process.wait(timeout=GRACE_SECONDS + 15) in CLEAN_EXIT
    signing_up.join()
    # A relay stops at SIGTERM, while the requests in flight still store events: those wait
    # for a relay of another replica. Kubernetes replaces the pod, then the extra one goes.
    chaos.stack.start("registration")
    chaos.stack.stop(second)
    # Allowed: a refused connection, retried on the other replica (what a load balancer or
    # client does). Not allowed: any request that failed once it had been accepted.
    assert statuses == [202] * 24
    invariants(chaos)


def test_sigterm_web_bff_under_sign_up_load(scenario: Chaos, invariants: Invariants) -> None:
    chaos = scenario
    bffs = ["web_bff", "web_bff-2"]
    chaos.stack.start("web_bff")
    chaos.stack.add_replica("web_bff")
    try:
        outcomes: list[bool] = []
        signing_up = threading.Thread(
            target=lambda: outcomes.extend(chaos.sign_up_in_browser(16, via=bffs))
        )
        signing_up.start()
        time.sleep(1.0)
        process = chaos.stack.terminate("web_bff")
        assert process.wait(timeout=GRACE_SECONDS + 15) in CLEAN_EXIT
        signing_up.join()
    finally:
        chaos.stack.stop(*chaos.stack.instances("web_bff"))
    # As for registration: only refused connections, retried on the other instance.
    assert outcomes == [True] * 16
    invariants(chaos)


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
