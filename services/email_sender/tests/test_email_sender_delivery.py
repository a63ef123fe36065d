"""Registration events become exactly one email each."""

from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pytest

from alta_devstack.smtp_sink import SmtpSink

from .email_sender_support import (
    CONFIRMATION_EVENT_TYPES,
    Queues,
    StartEmailSender,
    eventually,
    make_event,
)


def _parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None, "a plain text part"
    assert html is not None, "an HTML part"
    return text.get_content(), html.get_content()


def _links(text: str, path: str) -> list[str]:
    return [word for word in text.split() if path in word]


@pytest.mark.parametrize("event_type", CONFIRMATION_EVENT_TYPES)
async def test_a_confirmation_event_sends_a_confirmation_email(
    event_type: str,
    start_email_sender: StartEmailSender,
    email_queues: Queues,
    smtp_sink: SmtpSink,
) -> None:
    event = make_event(
        event_type,
        # Characters that must be URL-encoded, and a name that must be HTML-escaped.
        confirmation_token="a+b/c=d&e",
        name="Zoë <Lovelace>",
        # Registration's own expiry, in whatever offset it was written: shown in UTC.
        confirmation_expires_at=datetime(2031, 3, 12, 16, 30, tzinfo=timezone(timedelta(hours=2))),
    )
    start_email_sender()

    await email_queues.publish(event.model_dump_json())

    [message] = await eventually(smtp_sink.messages)
    assert message["To"] == event.email
    assert message["From"] == "Alta <no-reply@alta.local>"
    assert message["Subject"] == "Confirm your Alta account"
    assert message["Message-ID"] == f"<{event.event_id}@alta.email>"
    text, html = _parts(message)
    assert "Hello Zoë <Lovelace>," in text
    assert "Hello Zoë &lt;Lovelace&gt;," in html
    assert "<Lovelace>" not in html
    for part in (text, html):
        assert "This link expires on 12 March 2031 at 14:30 UTC." in part
    [link] = _links(text, "/confirm?")
    url = urlsplit(link)
    assert (url.scheme, url.netloc, url.path) == ("https", "alta.example", "/confirm")
    assert parse_qs(url.query) == {"token": ["a+b/c=d&e"]}
    assert f'href="{link.replace("&", "&amp;")}"' in html

    await eventually(email_queues.is_drained)
    assert len(smtp_sink.messages()) == 1


async def test_duplicate_attempt_sends_an_already_registered_email(
    start_email_sender: StartEmailSender, email_queues: Queues, smtp_sink: SmtpSink
) -> None:
    event = make_event("registration.duplicate_attempt")
    start_email_sender()

    await email_queues.publish(event.model_dump_json())

    [message] = await eventually(smtp_sink.messages)
    assert message["To"] == event.email
    assert message["Subject"] == "You already have an Alta account"
    text, html = _parts(message)
    assert "already have an account" in text
    assert _links(text, "/login") == ["https://alta.example/login"]
    assert 'href="https://alta.example/login"' in html
    for part in (text, html):
        assert "/confirm" not in part
        assert "token" not in part


@pytest.mark.parametrize("event_type", CONFIRMATION_EVENT_TYPES)
async def test_the_same_event_twice_sends_one_email(
    event_type: str,
    start_email_sender: StartEmailSender,
    email_queues: Queues,
    smtp_sink: SmtpSink,
) -> None:
    event = make_event(event_type)
    start_email_sender()

    await email_queues.publish(event.model_dump_json(), event.model_dump_json())

    await eventually(email_queues.is_drained)
    assert [m["Message-ID"] for m in smtp_sink.messages()] == [f"<{event.event_id}@alta.email>"]
    # A redelivery after the email went out is recognised as well.
    await email_queues.publish(event.model_dump_json())
    await eventually(email_queues.is_drained)
    assert len(smtp_sink.messages()) == 1


async def test_two_replicas_receiving_the_same_events_send_each_email_once(
    start_email_sender: StartEmailSender, email_queues: Queues, smtp_sink: SmtpSink
) -> None:
    events = [make_event() for _ in range(4)]
    start_email_sender()
    start_email_sender()

    bodies = [event.model_dump_json() for event in events]
    await email_queues.publish(*bodies, *bodies)

    await eventually(email_queues.is_drained, within=30)
    sent = sorted(message["Message-ID"] for message in smtp_sink.messages())
    assert sent == sorted(f"<{event.event_id}@alta.email>" for event in events)
    assert await email_queues.dead_letters() == []


async def test_an_smtp_outage_delays_the_email_and_it_arrives_once(
    start_email_sender: StartEmailSender,
    email_queues: Queues,
    smtp_sink: SmtpSink,
    database_url: str,
) -> None:
    event = make_event()
    start_email_sender(retry_backoff_base_seconds=1)
    smtp_sink.stop()

    await email_queues.publish(event.model_dump_json())

    async def retried_while_down() -> bool:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            cursor = await conn.execute(
                "SELECT attempts FROM email_sender.deliveries WHERE event_id = %s",
                (event.event_id,),
            )
            row = await cursor.fetchone()
        return row is not None and row[0] >= 2

    await eventually(retried_while_down)
    assert smtp_sink.messages() == []
    smtp_sink.start()

    await eventually(smtp_sink.messages, within=20)
    await eventually(email_queues.is_drained)
    [message] = smtp_sink.messages()
    assert message["To"] == event.email
    assert await email_queues.dead_letters() == []


async def test_a_temporary_smtp_rejection_is_retried_and_the_email_arrives_once(
    start_email_sender: StartEmailSender, email_queues: Queues, smtp_sink: SmtpSink
) -> None:
    event = make_event()
    smtp_sink.reject_next(1, 451)
    start_email_sender()

    await email_queues.publish(event.model_dump_json())

    await eventually(smtp_sink.messages)
    await eventually(email_queues.is_drained)
    assert [m["To"] for m in smtp_sink.messages()] == [event.email]
    assert await email_queues.dead_letters() == []


async def test_health_and_readiness_when_everything_is_up(
    start_email_sender: StartEmailSender,
) -> None:
    server = start_email_sender()

    async with httpx.AsyncClient(base_url=server.url) as client:
        health = await client.get("/healthz")
        ready = await client.get("/readyz")

    assert health.status_code == 200
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "sqs": "ok", "consumer": "ok"}


async def test_a_reset_request_emails_a_single_use_link_and_records_whose_it_was(
    start_email_sender: StartEmailSender,
    email_queues: Queues,
    smtp_sink: SmtpSink,
    database_url: str,
) -> None:
    event = make_event(
        "registration.password_reset_requested",
        password_reset_token="r+s/t=u&v",
        password_reset_expires_at=datetime(2031, 3, 12, 15, 0, tzinfo=UTC),
    )
    start_email_sender()

    await email_queues.publish(event.model_dump_json())

    [message] = await eventually(smtp_sink.messages)
    assert message["Subject"] == "Reset your Alta password"
    text, html = _parts(message)
    for part in (text, html):
        assert "This link expires on 12 March 2031 at 15:00 UTC. It works once." in part
    [link] = _links(text, "/reset-password?")
    url = urlsplit(link)
    assert (url.netloc, url.path) == ("alta.example", "/reset-password")
    assert parse_qs(url.query) == {"token": ["r+s/t=u&v"]}
    await eventually(email_queues.is_drained)
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT user_id, kind, status FROM email_sender.deliveries").fetchall()
    assert rows == [(event.user_id, "password_reset", "sent")]


async def test_a_password_change_tells_the_owner_how_to_take_the_account_back(
    start_email_sender: StartEmailSender, email_queues: Queues, smtp_sink: SmtpSink
) -> None:
    start_email_sender()

    await email_queues.publish(make_event("registration.password_changed").model_dump_json())

    [message] = await eventually(smtp_sink.messages)
    assert message["Subject"] == "Your Alta password was changed"
    text, _ = _parts(message)
    assert _links(text, "/forgot-password") == ["https://alta.example/forgot-password"]
    assert "token" not in text
