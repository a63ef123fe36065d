"""The emails we send for each registration event, rendered from the packaged templates."""

from dataclasses import dataclass
from datetime import UTC, datetime
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Literal
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from alta_common.events import RegistrationEvent

EmailKind = Literal["confirmation", "already_registered", "password_reset", "password_changed"]

_SUBJECTS: dict[EmailKind, str] = {
    "confirmation": "Confirm your Alta account",
    "already_registered": "You already have an Alta account",
    "password_reset": "Reset your Alta password",
    "password_changed": "Your Alta password was changed",
}


class UnsendableEvent(ValueError):
    """The event can never become an email (wrong type, missing token, bad address)."""


@dataclass(frozen=True)
class Email:
    kind: EmailKind
    message: EmailMessage


# The events that send the confirmation link: a sign-up, and a sign-up again while pending.
_CONFIRMATION_EVENTS = frozenset({"registration.created", "registration.confirmation_reissued"})


def _expiry_wording(expires_at: datetime | None) -> str:
    if expires_at is None:
        # Events from before registration sent the expiry: no number we could vouch for.
        return "This link is only valid for a limited time."
    # Every event time is UTC; a naive one just lost its offset on the way.
    utc = expires_at.astimezone(UTC) if expires_at.tzinfo else expires_at.replace(tzinfo=UTC)
    return f"This link expires on {utc.day} {utc:%B %Y at %H:%M} UTC."


def _recipient(address: str) -> Address:
    local, _, domain = address.rpartition("@")
    try:
        # Built from its parts: the addr_spec parser refuses a non-ASCII local part, which is
        # valid with SMTPUTF8.
        recipient = Address(username=local, domain=domain)
    except (ValueError, MessageError) as exc:
        raise UnsendableEvent("recipient address cannot be used in an email") from exc
    # Quoting would have changed it: not a plain mailbox (spaces, a second "@", a list, ...).
    if not local or not domain or recipient.addr_spec != address:
        raise UnsendableEvent("recipient address cannot be used in an email")
    return recipient


class EmailComposer:
    def __init__(self, *, public_url: str, sender: str) -> None:
        self._public_url = public_url.rstrip("/")
        self._sender = sender
        self._templates = Environment(
            loader=PackageLoader("alta_email_sender", "templates"),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )

    def compose(self, event: RegistrationEvent) -> Email:
        if event.type in _CONFIRMATION_EVENTS:
            if not event.confirmation_token:
                raise UnsendableEvent(f"{event.type} without a confirmation token")
            query = urlencode({"token": event.confirmation_token})
            return self._render(
                event,
                "confirmation",
                name=event.name,
                confirm_url=f"{self._public_url}/confirm?{query}",
                expiry=_expiry_wording(event.confirmation_expires_at),
            )
        if event.type == "registration.duplicate_attempt":
            # No name here: it was typed by whoever tried to sign up, not by the account owner.
            return self._render(event, "already_registered", login_url=f"{self._public_url}/login")
        if event.type == "registration.password_reset_requested":
            if not event.password_reset_token:
                raise UnsendableEvent(f"{event.type} without a reset token")
            query = urlencode({"token": event.password_reset_token})
            return self._render(
                event,
                "password_reset",
                name=event.name,
                reset_url=f"{self._public_url}/reset-password?{query}",
                expiry=_expiry_wording(event.password_reset_expires_at),
            )
        if event.type == "registration.password_changed":
            return self._render(
                event,
                "password_changed",
                name=event.name,
                forgot_url=f"{self._public_url}/forgot-password",
            )
        raise UnsendableEvent(f"no email for event type {event.type}")

    def _render(self, event: RegistrationEvent, kind: EmailKind, **context: Any) -> Email:
        subject = _SUBJECTS[kind]
        message = EmailMessage()
        message["To"] = _recipient(event.email)
        message["From"] = self._sender
        message["Subject"] = subject
        message["Date"] = format_datetime(datetime.now(UTC))
        # Derived from the event, so a repeated send is recognisable as the same email.
        message["Message-ID"] = f"<{event.event_id}@alta.email>"
        message.set_content(self._templates.get_template(f"{kind}.txt").render(context))
        message.add_alternative(
            self._templates.get_template(f"{kind}.html").render(context, subject=subject),
            subtype="html",
        )
        return Email(kind=kind, message=message)
