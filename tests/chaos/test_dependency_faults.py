"""SMTP, CRM, SQS and PostgreSQL misbehaving, then healing: work is delayed, never lost or
doubled."""

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from alta_devstack.postgres import EmbeddedPostgres
from alta_devstack.sqs import SqsServer

from .harness import Chaos, Counts

pytestmark = pytest.mark.timeout(300)

Invariants = Callable[..., Counts]
OUTAGE_SECONDS = 3


def test_smtp_outage(scenario: Chaos, invariants: Invariants) -> None:
    scenario.smtp.stop()
    scenario.sign_up(5)
    time.sleep(OUTAGE_SECONDS)
    scenario.smtp.start()
    invariants(scenario)


def test_smtp_slower_than_the_send_timeout(scenario: Chaos, invariants: Invariants) -> None:
    # Longer than SMTP_TIMEOUT_SECONDS (3): the sender gives up and tries again later.
    scenario.smtp.delay_data(4.5, count=2)
    scenario.sign_up(5)
    invariants(scenario)


def test_smtp_hangs_up_after_accepting(scenario: Chaos, invariants: Invariants) -> None:
    # 250 after DATA, then the connection is cut: the email counts as sent, no second one.
    scenario.smtp.hang_up_at_quit(3)
    scenario.sign_up(5)
    invariants(scenario)


def test_crm_429s_and_500s(scenario: Chaos, invariants: Invariants) -> None:
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)
    scenario.crm.force([429], retry_after="1")
    scenario.crm.force([429], retry_after=soon)
    scenario.crm.force([429, 500, 503, 500])
    scenario.sign_up(6)
    invariants(scenario)


def test_crm_slower_than_the_client_timeout(scenario: Chaos, invariants: Invariants) -> None:
    # Longer than CRM_TIMEOUT_SECONDS (2): the CRM creates the contact, the answer comes too
    # late, and the retry under the same Idempotency-Key is answered from the first.
    scenario.crm.delay(3.0, count=2)
    scenario.sign_up(5)
    counts = invariants(scenario)
    assert scenario.crm.stats()["replayed"] >= 1, counts.line()


def test_crm_outage(scenario: Chaos, invariants: Invariants) -> None:
    scenario.crm.stop()
    try:
        scenario.sign_up(5)
        time.sleep(OUTAGE_SECONDS)
    finally:
        scenario.crm.start()
    invariants(scenario)


def test_sqs_outage(scenario: Chaos, chaos_sqs: SqsServer, invariants: Invariants) -> None:
    chaos_sqs.stop()
    try:
        # The outbox holds the events: sign-ups succeed while the queues are away.
        assert set(scenario.sign_up(5)) == {202}
        time.sleep(OUTAGE_SECONDS)
    finally:
        chaos_sqs.start()
    invariants(scenario)


def test_postgres_restart_under_sign_ups(
    scenario: Chaos, chaos_postgres: EmbeddedPostgres, invariants: Invariants
) -> None:
    statuses: list[int] = []
    signing_up = threading.Thread(target=lambda: statuses.extend(scenario.sign_up(12)))
    signing_up.start()
    time.sleep(0.5)
    chaos_postgres.stop()
    try:
        time.sleep(OUTAGE_SECONDS)
    finally:
        chaos_postgres.start()
    signing_up.join()
    # Caught in the outage: 503 (try again), never a 5xx of another kind or a half-written user.
    assert set(statuses) <= {202, 503}, statuses
    invariants(scenario)
