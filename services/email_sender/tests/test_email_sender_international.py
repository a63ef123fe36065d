"""Addresses with a non-ASCII local part need a relay that speaks SMTPUTF8."""

from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from alta_devstack.ports import find_free_port
from alta_devstack.smtp_sink import SmtpSink

from .email_sender_support import Queues, StartEmailSender, eventually, make_event

# The domain as registration stores it: IDNA (bücher.example).
_INTERNATIONAL = "zoë.ñ@xn--bcher-kva.example"


class _AsciiOnlyRelay:
    """A relay without SMTPUTF8 (the devstack sink, like aiosmtpd's Controller, offers it)."""

    def __init__(self) -> None:
        self.port = find_free_port()
        self.envelopes: list[Envelope] = []
        self._controller = Controller(
            self, hostname="127.0.0.1", port=self.port, enable_SMTPUTF8=False
        )

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 OK"

    def __enter__(self) -> "_AsciiOnlyRelay":
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


@pytest.fixture
def ascii_only_relay() -> Iterator[_AsciiOnlyRelay]:
    with _AsciiOnlyRelay() as relay:
        yield relay


async def test_a_relay_with_smtputf8_gets_the_international_address(
    start_email_sender: StartEmailSender, email_queues: Queues, smtp_sink: SmtpSink
) -> None:
    event = make_event(email=_INTERNATIONAL)
    start_email_sender()

    await email_queues.publish(event.model_dump_json())

    [message] = await eventually(smtp_sink.messages)
    assert message["To"] == _INTERNATIONAL
    await eventually(email_queues.is_drained)
    assert await email_queues.dead_letters() == []


async def test_without_smtputf8_the_email_is_dead_lettered_at_once(
    start_email_sender: StartEmailSender,
    email_queues: Queues,
    ascii_only_relay: _AsciiOnlyRelay,
) -> None:
    event = make_event(email=_INTERNATIONAL)
    # Long backoffs: only a rejection on the first receive dead-letters it within the test.
    start_email_sender(smtp_port=ascii_only_relay.port, retry_backoff_base_seconds=30)

    await email_queues.publish(event.model_dump_json())

    [(body, reason)] = await eventually(email_queues.dead_letters_with_reasons, within=10)
    assert body == event.model_dump_json()
    assert reason is not None
    assert "SMTPUTF8" in reason
    await eventually(email_queues.is_drained)
    assert ascii_only_relay.envelopes == []


async def test_an_idna_domain_needs_no_smtputf8(
    start_email_sender: StartEmailSender,
    email_queues: Queues,
    ascii_only_relay: _AsciiOnlyRelay,
) -> None:
    event = make_event(email="ada@xn--bcher-kva.example")
    start_email_sender(smtp_port=ascii_only_relay.port)

    await email_queues.publish(event.model_dump_json())

    [envelope] = await eventually(lambda: ascii_only_relay.envelopes)
    assert envelope.rcpt_tos == ["ada@xn--bcher-kva.example"]
    await eventually(email_queues.is_drained)
