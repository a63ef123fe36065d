"""One SQS message: registration event → claim → email → sent."""

import hashlib

import structlog
from pydantic import ValidationError

from alta_common.events import RegistrationEvent
from alta_common.sqs import ReceivedMessage, Reject, RetryLater
from alta_email_sender.emails import EmailComposer, UnsendableEvent
from alta_email_sender.mailer import Mailer, SmtpFailed
from alta_email_sender.repository import DeliveryRepository

log = structlog.get_logger("alta.email_sender")


def recipient_hash(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def _parse(body: str) -> RegistrationEvent:
    try:
        return RegistrationEvent.model_validate_json(body)
    except ValidationError as exc:
        # Field names and error types only: the input values include tokens and addresses.
        problems = sorted(
            {f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['type']}" for e in exc.errors()}
        )
        raise Reject(f"not a registration event ({'; '.join(problems)})") from None


class EmailEventHandler:
    def __init__(
        self,
        *,
        composer: EmailComposer,
        mailer: Mailer,
        deliveries: DeliveryRepository,
        claim_seconds: float,
        send_timeout_seconds: float,
    ) -> None:
        self._composer = composer
        self._mailer = mailer
        self._deliveries = deliveries
        self._claim_seconds = claim_seconds
        self._send_timeout_seconds = send_timeout_seconds

    async def __call__(self, message: ReceivedMessage) -> None:
        event = _parse(message.body)
        with structlog.contextvars.bound_contextvars(
            event_id=str(event.event_id),
            event_type=event.type,
            recipient_domain=event.email.rpartition("@")[2].lower(),
        ):
            await self._handle(event)

    async def _handle(self, event: RegistrationEvent) -> None:
        try:
            email = self._composer.compose(event)
        except UnsendableEvent as exc:
            log.warning("event cannot become an email", reason=str(exc))
            raise Reject(str(exc)) from None

        claim = await self._deliveries.claim(
            event.event_id,
            kind=email.kind,
            recipient_hash=recipient_hash(event.email),
            lease_seconds=self._claim_seconds,
        )
        if claim.status == "already_sent":
            log.info("email already sent for this event", kind=email.kind)
            return
        if claim.status == "busy":
            # The holder is done within one send timeout unless it crashed; then its claim
            # runs out and the next attempt takes over.
            delay = min(claim.retry_in_seconds, self._send_timeout_seconds) + 1
            log.info("email is being sent by another replica", kind=email.kind)
            raise RetryLater("another replica is sending this email", delay_seconds=delay)

        try:
            await self._mailer.send(email.message)
        except SmtpFailed as exc:
            log.warning("smtp relay did not accept the email", kind=email.kind, error=str(exc))
            try:
                await self._deliveries.release(event.event_id)
            except Exception as release_error:
                # Only delays the retry until the claim expires by itself.
                log.warning("could not release delivery claim", error=repr(release_error))
            raise RetryLater(f"smtp relay did not accept the email: {exc}") from None
        # At-least-once edge: if we stop between the relay's acceptance and this update, the
        # claim expires and a redelivery sends the email a second time.
        await self._deliveries.mark_sent(event.event_id)
        log.info("email sent", kind=email.kind)
