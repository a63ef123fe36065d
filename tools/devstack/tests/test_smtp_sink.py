from email.message import EmailMessage

import aiosmtplib
import pytest

from alta_devstack.smtp_sink import SmtpSink


def confirmation(to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "noreply@alta.test"
    message["To"] = to
    message["Subject"] = "Confirm your sign-up"
    message.set_content("Click https://alta.test/confirm?token=abc123 to confirm.")
    return message


async def send(sink: SmtpSink, message: EmailMessage) -> None:
    await aiosmtplib.send(message, hostname=sink.host, port=sink.port, timeout=5)


async def test_stores_messages_in_arrival_order(
    smtp_sink: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="alta_devstack.smtp_sink")
    await send(smtp_sink, confirmation("ada@example.com"))
    await send(smtp_sink, confirmation("bob@example.com"))

    assert [m["To"] for m in smtp_sink.messages()] == ["ada@example.com", "bob@example.com"]
    assert len(list(smtp_sink.mail_dir.glob("*.eml"))) == 2
    assert "https://alta.test/confirm?token=abc123" in caplog.text


async def test_reject_next_fails_one_send(smtp_sink: SmtpSink) -> None:
    smtp_sink.reject_next(1)
    with pytest.raises(aiosmtplib.SMTPDataError) as failure:
        await send(smtp_sink, confirmation("ada@example.com"))
    assert failure.value.code == 451
    await send(smtp_sink, confirmation("ada@example.com"))
    assert len(smtp_sink.messages()) == 1


async def test_restart_on_same_port(smtp_sink: SmtpSink) -> None:
    smtp_sink.stop()
    with pytest.raises(aiosmtplib.SMTPConnectError):
        await send(smtp_sink, confirmation("ada@example.com"))
    smtp_sink.start()
    await send(smtp_sink, confirmation("ada@example.com"))
    assert len(smtp_sink.messages()) == 1


async def test_delayed_data_outlasts_a_short_client_timeout(smtp_sink: SmtpSink) -> None:
    smtp_sink.delay_data(1.5)
    with pytest.raises(aiosmtplib.SMTPTimeoutError):
        await aiosmtplib.send(
            confirmation("ada@example.com"),
            hostname=smtp_sink.host,
            port=smtp_sink.port,
            timeout=0.5,
        )
    await send(smtp_sink, confirmation("bob@example.com"))
    assert "bob@example.com" in [m["To"] for m in smtp_sink.messages()]


async def test_hang_up_at_quit_accepts_the_message_then_cuts_the_goodbye(
    smtp_sink: SmtpSink,
) -> None:
    smtp_sink.hang_up_at_quit()
    client = aiosmtplib.SMTP(hostname=smtp_sink.host, port=smtp_sink.port, timeout=5)
    await client.connect()
    errors, _ = await client.send_message(confirmation("ada@example.com"))
    assert errors == {}
    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        await client.quit()
    assert len(smtp_sink.messages()) == 1
