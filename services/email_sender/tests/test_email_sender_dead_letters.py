"""Messages that can never become an email end in the dead-letter queue, and nobody is mailed."""

import json

import pytest

from alta_devstack.smtp_sink import SmtpSink

from .email_sender_support import Queues, StartEmailSender, eventually, make_event

_CREATED_WITHOUT_TOKEN = make_event(confirmation_token=None).model_dump_json()
_REISSUED_WITHOUT_TOKEN = make_event(
    "registration.confirmation_reissued", confirmation_token=None
).model_dump_json()
_CONFIRMED = make_event("registration.confirmed", confirmation_token=None).model_dump_json()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("this is not json", id="malformed"),
        pytest.param(json.dumps({"type": "registration.created", "token": "x"}), id="incomplete"),
        pytest.param(_CONFIRMED, id="event-type-not-for-email"),
        pytest.param(_CREATED_WITHOUT_TOKEN, id="created-without-token"),
        pytest.param(_REISSUED_WITHOUT_TOKEN, id="reissued-without-token"),
    ],
)
async def test_a_message_that_is_not_an_email_goes_to_the_dead_letter_queue(
    body: str, start_email_sender: StartEmailSender, email_queues: Queues, smtp_sink: SmtpSink
) -> None:
    start_email_sender()

    await email_queues.publish(body)

    assert await eventually(email_queues.dead_letters) == [body]
    await eventually(email_queues.is_drained)
    assert smtp_sink.messages() == []


async def test_an_email_the_relay_always_refuses_ends_in_the_dead_letter_queue(
    start_email_sender: StartEmailSender, email_queues: Queues, smtp_sink: SmtpSink
) -> None:
    event = make_event()
    smtp_sink.reject_next(100, 550, "5.7.1 Delivery not authorized")
    start_email_sender(retry_backoff_base_seconds=0.1)

    await email_queues.publish(event.model_dump_json())

    # Dead-lettered by the queue's redrive policy once maxReceiveCount receives all failed.
    assert await eventually(email_queues.dead_letters, within=30) == [event.model_dump_json()]
    assert smtp_sink.messages() == []


async def test_an_unreachable_relay_ends_in_the_dead_letter_queue(
    start_email_sender: StartEmailSender, email_queues: Queues, smtp_sink: SmtpSink
) -> None:
    event = make_event()
    smtp_sink.stop()
    start_email_sender(retry_backoff_base_seconds=0.1)

    await email_queues.publish(event.model_dump_json())

    assert await eventually(email_queues.dead_letters, within=30) == [event.model_dump_json()]
