"""Integration events that registration publishes and the consumers read: the SQS contract."""

from datetime import datetime
from typing import Literal
from uuid import UUID, uuid5

from pydantic import BaseModel, ConfigDict

EventType = Literal[
    # A new account: confirmation email, CRM create.
    "registration.created",
    # A sign-up with an address that already has an account: "you already have an account" email.
    "registration.duplicate_attempt",
    # A sign-up again with an address still pending: a fresh confirmation email, no CRM report.
    "registration.confirmation_reissued",
    # The address was confirmed: CRM status update.
    "registration.confirmed",
    # A forgotten password: a single-use reset link by email.
    "registration.password_reset_requested",
    # The password was reset or changed: a heads-up email to the owner, no CRM report.
    "registration.password_changed",
]


class RegistrationEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: UUID
    type: EventType
    occurred_at: datetime
    user_id: UUID
    email: str
    name: str
    status: Literal["pending", "confirmed"]
    registered_at: datetime
    request_id: str | None = None
    # Only on the email queue's confirmation events; the database keeps just the token's hash.
    confirmation_token: str | None = None
    confirmation_expires_at: datetime | None = None
    # Only on password_reset_requested; likewise only its hash is stored.
    password_reset_token: str | None = None
    password_reset_expires_at: datetime | None = None


# Fixed namespace of the CRM events' ids (a random UUID chosen once; never change it).
_CRM_EVENT_NAMESPACE = UUID("6f1c2a4e-5b3d-4e8f-9a71-0c2d3e4f5a6b")


def crm_event_id(user_id: UUID, event_type: EventType) -> UUID:
    """The event id of a user's one CRM event of this type, the same whoever computes it.

    It is the CRM request's Idempotency-Key and the key of crm_integration's claim, so an event
    re-enqueued by reconciliation while the original is merely late is sent once, not twice.
    """
    return uuid5(_CRM_EVENT_NAMESPACE, f"{event_type}:{user_id}")
