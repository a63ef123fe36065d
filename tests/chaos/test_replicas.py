"""Several replicas at once: the same event twice and to two replicas, HTTP services stopped
under load, and the global CRM limit with a backlog."""

import asyncio
import threading
import time
from collections.abc import Callable

import pytest
from aiobotocore.session import get_session

from alta_devstack.ports import find_free_port

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


def test_three_crm_consumers_and_two_email_senders_drain_a_backlog(
    chaos_factory: Callable[..., Chaos], invariants: Invariants
) -> None:
    # The stand-in enforces the CRM's limit (10/s, low so that moto, which drains about 21
    # messages/s, is not the bottleneck); crm_integration is configured at 90 % of it, as in
    # production (90/s for the CRM's 100/s). The messages in hand (3 replicas x one poller x
    # 10) need over 3 s of slots, so an attempt may wait up to 10 s for its slot (a longer
    # visibility timeout pays for that) rather than hand its message back. Each replica's
    # database pool starts with a connection per message it may hold: grown one at a time on
    # demand, it kept the first messages from their slots for seconds on a loaded box.
    limit = 10
    chaos = chaos_factory(
        services=("registration",),
        crm_limit=limit,
        crm_visibility=60,
        crm_env={
            "CONSUMER_POLLERS": "1",
            "CRM_MAX_IN_FLIGHT": "10",
            "DB_POOL_MIN_SIZE": "10",
            "CRM_RATE_LIMIT_MAX_WAIT_SECONDS": "10",
        },
    )
    rate = float(chaos.stack.env["CRM_RATE_LIMIT_PER_SECOND"])
    backlog = 80
    assert set(chaos.sign_up(backlog)) == {202}
    chaos.wait_for_outbox()
    consumers = ["crm_integration", "crm_integration-2", "crm_integration-3"]
    consumers += ["email_sender", "email_sender-2"]
    for instance in consumers:
        chaos.stack.ports.setdefault(instance, find_free_port())
    # All at once, so that the backlog is shared rather than half drained by the first up.
    chaos.stack.start(*consumers)
    counts = invariants(chaos)
    sent = sorted(r["received_at"] for r in chaos.crm.contacts())
    measured = (len(sent) - 1) / (sent[-1] - sent[0])
    senders = [i for i in consumers[:3] if "crm request" in chaos.stack.logs(i)]
    print(
        f"\nbacklog of {backlog} drained at {measured:.2f}/s = {measured / rate:.0%} of the "
        f"configured {rate:g}/s by {len(senders)} crm_integration replicas; at most "
        f"{counts.max_in_any_second} in a second (CRM limit {limit}/s)"
    )
    assert len(senders) == 3, "every replica took part"
    assert measured >= 0.9 * rate, f"{measured:.2f}/s is under 90 % of {rate:g}/s"


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
