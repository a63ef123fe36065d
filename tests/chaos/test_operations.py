"""The operator's tools under faults: dead-letter redrive and CRM reconciliation."""

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable

import pytest
from aiobotocore.session import get_session

from .harness import Chaos, Counts

pytestmark = pytest.mark.timeout(300)

Invariants = Callable[..., Counts]


def command(chaos: Chaos, service: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **chaos.stack.env, **chaos.stack.service_env.get(service, {})}
    return subprocess.run(  # noqa: S603 - our own module
        [sys.executable, "-m", f"alta_{service}", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_crm_400_is_dead_lettered_then_redriven_and_synced(
    scenario: Chaos, invariants: Invariants
) -> None:
    chaos = scenario
    chaos.crm.force([400])
    chaos.sign_up(3)
    chaos.stack.wait_quiet()
    assert chaos.dead_letter_counts()["crm"] == 1

    [listed] = [
        json.loads(line)
        for line in command(chaos, "crm_integration", "dlq", "list").stdout.splitlines()
    ]
    assert listed["event_type"] == "registration.created"
    assert "HTTP 400" in listed["reason"]
    shown = json.loads(
        command(chaos, "crm_integration", "dlq", "show", listed["message_id"]).stdout
    )
    assert shown["body"]["event_id"] == listed["event_id"]
    redriven = command(chaos, "crm_integration", "dlq", "redrive", "--all").stdout
    assert json.loads(redriven) == {"redriven": [listed["message_id"]]}
    # The failed attempt's claim does not block the redriven message: the CRM gets the contact.
    invariants(chaos)


def test_reconcile_re_enqueues_lost_contacts_once(scenario: Chaos, invariants: Invariants) -> None:
    chaos = scenario
    chaos.stack.stop("crm_integration")
    chaos.sign_up(5)
    chaos.wait_for_mail(5)
    chaos.wait_for_outbox()
    # The CRM events are published, then lost before any consumer saw them.
    asyncio.run(_purge(chaos.stack.env["SQS_ENDPOINT_URL"], chaos.queues["crm"].url))

    dry = json.loads(
        command(chaos, "crm_integration", "reconcile", "--settle-seconds", "0", "--dry-run").stdout
    )
    assert dry == {"contacts": 5, "events": 5, "enqueued": 0}
    # Twice, as if the first run's events were merely late: still one create per contact.
    for _ in range(2):
        result = command(chaos, "crm_integration", "reconcile", "--settle-seconds", "0")
        assert json.loads(result.stdout)["enqueued"] == 5
    chaos.stack.start("crm_integration")
    invariants(chaos)
    after = json.loads(
        command(chaos, "crm_integration", "reconcile", "--settle-seconds", "0").stdout
    )
    assert after == {"contacts": 0, "events": 0, "enqueued": 0}


async def _purge(endpoint: str, url: str) -> None:
    async with get_session().create_client("sqs", endpoint_url=endpoint) as sqs:
        await sqs.purge_queue(QueueUrl=url)
