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

EmailKind = Literal["confirmation", "already_registered"]

_SUBJECTS: dict[EmailKind, str] = {
    "confirmation": "Confirm your Alta account",
    "already_registered": "You already have an Alta account",
}


class UnsendableEvent(ValueError):
    """The event can never become an email (wrong type, missing token, bad address)."""


@dataclass(frozen=True)
class Email:
    kind: EmailKind
    message: EmailMessage


class EmailComposer:
    def __init__(self, *, public_url: str, sender: str, confirmation_ttl_hours: int) -> None:
        self._public_url = public_url.rstrip("/")
        self._sender = sender
        self._confirmation_ttl_hours = confirmation_ttl_hours
        self._templates = Environment(
            loader=PackageLoader("alta_email_sender", "templates"),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )

    def compose(self, event: RegistrationEvent) -> Email:
        if event.type == "registration.created":
            if not event.confirmation_token:
                raise UnsendableEvent("registration.created without a confirmation token")
            query = urlencode({"token": event.confirmation_token})
            return self._render(
                event,
                "confirmation",
                name=event.name,
                confirm_url=f"{self._public_url}/confirm?{query}",
                valid_hours=self._confirmation_ttl_hours,
            )
        if event.type == "registration.duplicate_attempt":
            # No name here: it was typed by whoever tried to sign up, not by the account owner.
            return self._render(event, "already_registered", login_url=f"{self._public_url}/login")
        raise UnsendableEvent(f"no email for event type {event.type}")

    def _render(self, event: RegistrationEvent, kind: EmailKind, **context: Any) -> Email:
        subject = _SUBJECTS[kind]
        message = EmailMessage()
        try:
            message["To"] = Address(addr_spec=event.email)
        except (ValueError, MessageError) as exc:
            raise UnsendableEvent("recipient address cannot be used in an email") from exc
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
