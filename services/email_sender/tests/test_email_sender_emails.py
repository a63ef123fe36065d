"""What the emails say, for events the end-to-end tests do not need a relay to show."""

from datetime import datetime
from typing import Any

import pytest

from alta_email_sender.emails import Email, EmailComposer, UnsendableEvent

from .email_sender_support import make_event


def _compose(**overrides: Any) -> Email:
    composer = EmailComposer(public_url="https://alta.example", sender="Alta <a@alta.example>")
    return composer.compose(make_event(**overrides))


def _text(email: Email) -> str:
    body = email.message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def test_without_an_expiry_the_confirmation_email_names_no_duration() -> None:
    email = _compose(confirmation_expires_at=None)

    text = _text(email)
    assert "This link is only valid for a limited time." in text
    assert "hours" not in text
    assert "expires on" not in text


def test_an_expiry_without_an_offset_is_read_as_utc() -> None:
    email = _compose(confirmation_expires_at=datetime(2031, 1, 2, 3, 4))

    assert "This link expires on 2 January 2031 at 03:04 UTC." in _text(email)


@pytest.mark.parametrize(
    "address",
    [
        pytest.param("zoë.ñ@xn--bcher-kva.example", id="non-ascii-local-part-idna-domain"),
        pytest.param("ada@xn--bcher-kva.example", id="idna-domain"),
    ],
)
def test_an_international_address_becomes_the_recipient_unchanged(address: str) -> None:
    email = _compose(email=address)

    assert [a.addr_spec for a in email.message["To"].addresses] == [address]


@pytest.mark.parametrize(
    "address",
    [
        "no-at-sign",
        "@example.org",
        "ada@",
        "ada lovelace@example.org",
        "ada@example.org, eve@example.org",
        "ada\r\nBcc: eve@example.org@example.org",
    ],
)
def test_an_address_that_is_not_one_plain_mailbox_is_unsendable(address: str) -> None:
    with pytest.raises(UnsendableEvent, match="recipient address"):
        _compose(email=address)
