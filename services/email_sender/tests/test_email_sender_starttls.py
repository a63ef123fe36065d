"""SMTP_SECURITY=starttls against a relay that requires it: one STARTTLS, then the email."""

import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from alta_devstack.ports import find_free_port

from .email_sender_support import Queues, StartEmailSender, eventually, make_event


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "relay.pem", directory / "relay.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class CountingRelay:
    """Counts EHLOs (a client says EHLO again after each STARTTLS) and notes each message's
    encryption."""

    def __init__(self) -> None:
        self.ehlos = 0
        self.messages_over_tls: list[bool] = []

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: Any
    ) -> Any:
        self.ehlos += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages_over_tls.append(session.ssl is not None)
        return "250 OK"


@pytest.fixture
def tls_relay(tmp_path: Path) -> Iterator[tuple[CountingRelay, int, Path]]:
    cert_path, key_path = self_signed_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    relay = CountingRelay()
    port = find_free_port()
    controller = Controller(
        relay, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True
    )
    controller.start()
    yield relay, port, cert_path
    controller.stop()


async def test_starttls_is_done_once_and_the_email_goes_over_it(
    start_email_sender: StartEmailSender,
    email_queues: Queues,
    tls_relay: tuple[CountingRelay, int, Path],
) -> None:
    relay, port, cert_path = tls_relay
    start_email_sender(
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security="starttls",
        smtp_ca_file=str(cert_path),
    )

    await email_queues.publish(make_event().model_dump_json())

    await eventually(email_queues.is_drained)
    assert relay.messages_over_tls == [True]
    # One EHLO in the clear, one after the (single) STARTTLS.
    assert relay.ehlos == 2
