"""SMTP faults: an outage, a relay slower than our timeout, a relay that hangs up at QUIT."""

import asyncio

import httpx
from prometheus_client.parser import text_string_to_metric_families

from alta_devstack.smtp_sink import SmtpSink

from .email_sender_support import Queues, StartEmailSender, eventually, make_event


def emails_sent(url: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "alta_emails_sent_total"
    )


async def test_a_relay_that_hangs_up_after_accepting_counts_as_sent(
    start_email_sender: StartEmailSender, email_queues: Queues, smtp_sink: SmtpSink
) -> None:
    sender = start_email_sender()
    smtp_sink.hang_up_at_quit()
    event = make_event()

    await email_queues.publish(event.model_dump_json())

    await eventually(email_queues.is_drained)
    # Time for a wrongly scheduled retry (backoff 0.2 s) to show up.
    await asyncio.sleep(2)
    assert [m["Message-ID"] for m in smtp_sink.messages()] == [f"<{event.event_id}@alta.email>"]
    assert emails_sent(sender.url) == 1


async def test_an_smtp_outage_delays_the_email_and_it_is_sent_once_when_it_ends(
    start_email_sender: StartEmailSender, email_queues: Queues, smtp_sink: SmtpSink
) -> None:
    start_email_sender()
    smtp_sink.stop()
    event = make_event()

    await email_queues.publish(event.model_dump_json())
    await asyncio.sleep(2)  # a few failed attempts
    assert smtp_sink.messages() == []
    smtp_sink.start()

    [message] = await eventually(smtp_sink.messages, within=30)
    assert message["Message-ID"] == f"<{event.event_id}@alta.email>"
    await eventually(email_queues.is_drained, within=30)
    assert len(smtp_sink.messages()) == 1


async def test_a_relay_slower_than_our_timeout_gets_the_email_once(
    start_email_sender: StartEmailSender, email_queues: Queues, smtp_sink: SmtpSink
) -> None:
    # The sender gives up after SMTP_TIMEOUT_SECONDS (2 s here); the relay, having had no
    # one to answer, keeps nothing, and the retry goes through.
    start_email_sender()
    smtp_sink.delay_data(4)
    event = make_event()

    await email_queues.publish(event.model_dump_json())

    [message] = await eventually(smtp_sink.messages, within=30)
    assert message["Message-ID"] == f"<{event.event_id}@alta.email>"
    await eventually(email_queues.is_drained, within=30)
    assert len(smtp_sink.messages()) == 1
