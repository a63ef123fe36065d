"""The CRM's HTTP API: the two calls we make, and what each answer means for the event."""

import asyncio
import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
from pydantic import SecretStr

from alta_common.events import RegistrationEvent

DEFAULT_RETRY_AFTER_SECONDS = 1.0
SUPPORTED_EVENT_TYPES = frozenset({"registration.created", "registration.confirmed"})


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    # 429: over the CRM's limit; try again after its Retry-After.
    RATE_LIMITED = "rate_limited"
    # 5xx or 408: the CRM is struggling; try again after a backoff.
    UNAVAILABLE = "unavailable"
    # 404: the contact does not exist (yet).
    NOT_FOUND = "not_found"
    # Any other answer: the request itself is wrong and will not get better by repeating it.
    REFUSED = "refused"


@dataclass(frozen=True)
class CrmAnswer:
    status: int
    outcome: Outcome
    retry_after_seconds: float | None = None

    @property
    def retryable(self) -> bool:
        return self.outcome in (Outcome.RATE_LIMITED, Outcome.UNAVAILABLE)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP date (RFC 9110)."""
    if value is None or not value.strip():
        return DEFAULT_RETRY_AFTER_SECONDS
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER_SECONDS
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def classify(response: httpx.Response) -> CrmAnswer:
    status = response.status_code
    if 200 <= status < 300:
        return CrmAnswer(status, Outcome.DELIVERED)
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return CrmAnswer(status, Outcome.RATE_LIMITED, retry_after)
    if status >= 500 or status == 408:
        return CrmAnswer(status, Outcome.UNAVAILABLE)
    if status == 404:
        return CrmAnswer(status, Outcome.NOT_FOUND)
    return CrmAnswer(status, Outcome.REFUSED)


class CrmClient:
    """Sends one event to the CRM through `http`, whose base URL is the CRM's.

    Raises `httpx.TransportError` or `TimeoutError` when no answer came back: the request may
    or may not have reached the CRM.
    """

    def __init__(
        self, http: httpx.AsyncClient, *, api_token: SecretStr, timeout_seconds: float
    ) -> None:
        self._http = http
        self._api_token = api_token
        self._timeout_seconds = timeout_seconds

    async def send(self, event: RegistrationEvent) -> CrmAnswer:
        if event.type == "registration.created":
            method, path = "POST", "/contacts"
            body = {
                "external_id": str(event.user_id),
                "email": event.email,
                "name": event.name,
                "status": event.status,
                "registered_at": event.registered_at.isoformat(),
            }
        elif event.type == "registration.confirmed":
            method, path = "PATCH", f"/contacts/{event.user_id}"
            body = {"status": "confirmed"}
        else:
            raise ValueError(f"the CRM takes no {event.type} events")
        headers = {
            "Authorization": f"Bearer {self._api_token.get_secret_value()}",
            # The CRM answers a repeated key with the first result, so a request resent after
            # a crash or a lost answer does not create a second contact.
            "Idempotency-Key": str(event.event_id),
        }
        # httpx's timeout applies to each phase (pool, connect, write, read); this bounds the
        # whole request, which the retry budget counts on.
        async with asyncio.timeout(self._timeout_seconds):
            response = await self._http.request(method, path, json=body, headers=headers)
        return classify(response)
