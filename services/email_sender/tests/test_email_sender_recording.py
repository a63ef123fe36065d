"""A database blip right after the relay took the email does not send it twice."""

import psycopg

from alta_devstack.smtp_sink import SmtpSink

from .email_sender_support import Queues, StartEmailSender, eventually, make_event

# Fails the first two attempts to mark an email sent with a transient error (a deadlock
# victim's); a sequence, because it counts across the rolled-back transactions.
_FAIL_TWICE_TO_MARK_SENT = """
CREATE SEQUENCE email_sender.test_mark_sent_failures;
CREATE FUNCTION email_sender.test_fail_mark_sent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF nextval('email_sender.test_mark_sent_failures') <= 2 THEN
        RAISE EXCEPTION 'simulated database blip' USING ERRCODE = 'deadlock_detected';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER test_fail_mark_sent BEFORE UPDATE ON email_sender.deliveries
    FOR EACH ROW WHEN (NEW.status = 'sent') EXECUTE FUNCTION email_sender.test_fail_mark_sent();
"""


async def test_a_failure_to_record_the_sent_email_is_retried_and_it_arrives_once(
    start_email_sender: StartEmailSender,
    email_queues: Queues,
    smtp_sink: SmtpSink,
    database_url: str,
) -> None:
    event = make_event()
    # A short claim, so that a lost record would let a redelivery send it again within the test.
    start_email_sender(sqs_visibility_timeout_seconds=6)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(_FAIL_TWICE_TO_MARK_SENT)

    await email_queues.publish(event.model_dump_json())

    await eventually(email_queues.is_drained, within=30)
    assert [m["Message-ID"] for m in smtp_sink.messages()] == [f"<{event.event_id}@alta.email>"]
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            "SELECT status, attempts FROM email_sender.deliveries WHERE event_id = %s",
            (event.event_id,),
        )
        assert await cursor.fetchone() == ("sent", 1)
