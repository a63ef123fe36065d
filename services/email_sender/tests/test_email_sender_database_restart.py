"""PostgreSQL going away right after the relay took the email: still exactly one email."""

import asyncio
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import psycopg
import pytest
from pydantic import SecretStr

from alta_devstack.ports import find_free_port
from alta_devstack.postgres import EmbeddedPostgres, create_database
from alta_devstack.smtp_sink import SmtpSink

from .email_sender_support import Queues, StartEmailSender, eventually, make_event

VISIBILITY_SECONDS = 9
# Longer than the claim, so that a claim left to lapse would be taken over and sent again.
OUTAGE_SECONDS = VISIBILITY_SECONDS + 3


@pytest.fixture
def restartable_postgres(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    """A server of this test's own, to stop and start without disturbing other tests."""
    with EmbeddedPostgres(tmp_path / "postgres", find_free_port()) as server:
        yield server


async def _delivery(database_url: str, event_id: UUID) -> tuple[str, int] | None:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            "SELECT status, attempts FROM email_sender.deliveries WHERE event_id = %s",
            (event_id,),
        )
        row = await cursor.fetchone()
    return None if row is None else (row[0], row[1])


async def test_postgres_stopped_after_the_send_and_restarted_sends_one_email(
    restartable_postgres: EmbeddedPostgres,
    start_email_sender: StartEmailSender,
    email_queues: Queues,
    smtp_sink: SmtpSink,
) -> None:
    database_url = create_database(restartable_postgres.url(), "alta_email_restart")
    event = make_event()
    start_email_sender(
        database_url=SecretStr(database_url),
        sqs_visibility_timeout_seconds=VISIBILITY_SECONDS,
        smtp_timeout_seconds=3,
    )
    # The relay answers DATA 2 s late: time to stop PostgreSQL between claim and record.
    smtp_sink.delay_data(2)
    await email_queues.publish(event.model_dump_json())

    await eventually(lambda: _delivery(database_url, event.event_id), within=30, interval=0.05)
    await asyncio.to_thread(restartable_postgres.stop)
    await eventually(smtp_sink.messages, within=10)
    await asyncio.sleep(OUTAGE_SECONDS)
    await asyncio.to_thread(restartable_postgres.start)

    await eventually(email_queues.is_drained, within=60)
    assert [m["Message-ID"] for m in smtp_sink.messages()] == [f"<{event.event_id}@alta.email>"]
    assert await _delivery(database_url, event.event_id) == ("sent", 1)
