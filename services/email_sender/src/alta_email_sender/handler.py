"""One SQS message: registration event → claim → email → sent."""

import asyncio
import hashlib
from uuid import UUID

import psycopg
import structlog
from prometheus_client import CollectorRegistry, Counter
from pydantic import ValidationError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from alta_common.events import RegistrationEvent
from alta_common.sqs import ReceivedMessage, Reject, RetryLater
from alta_email_sender.emails import EmailComposer, UnsendableEvent
from alta_email_sender.mailer import Mailer, SmtpFailed, SmtpUtf8Unsupported
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


class EmailMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter(
            "alta_emails_sent_total",
            "Emails the SMTP relay accepted, by kind.",
            ["kind"],
            registry=registry,
        )
        self.failed = Counter(
            "alta_emails_failed_total",
            "Sends the SMTP relay did not accept, by kind and outcome (retry or dead_letter).",
            ["kind", "outcome"],
            registry=registry,
        )


class EmailEventHandler:
    def __init__(
        self,
        *,
        composer: EmailComposer,
        mailer: Mailer,
        deliveries: DeliveryRepository,
        claim_seconds: float,
        send_timeout_seconds: float,
        record_limit_seconds: float,
        metrics: EmailMetrics,
    ) -> None:
        self._metrics = metrics
        self._composer = composer
        self._mailer = mailer
        self._deliveries = deliveries
        self._claim_seconds = claim_seconds
        self._send_timeout_seconds = send_timeout_seconds
        self._record_limit_seconds = record_limit_seconds

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
            user_id=event.user_id,
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
        except asyncio.CancelledError:
            # Shutdown cut the send short before the relay accepted the email: free the claim
            # so that the redelivery (at once; see SqsConsumer) sends it without waiting.
            await self._release(event.event_id)
            raise
        except SmtpUtf8Unsupported as exc:
            self._metrics.failed.labels(email.kind, "dead_letter").inc()
            log.warning("smtp relay cannot take this address", kind=email.kind, error=str(exc))
            await self._release(event.event_id)
            raise Reject(str(exc)) from None
        except SmtpFailed as exc:
            self._metrics.failed.labels(email.kind, "retry").inc()
            log.warning("smtp relay did not accept the email", kind=email.kind, error=str(exc))
            await self._release(event.event_id)
            raise RetryLater(f"smtp relay did not accept the email: {exc}") from None
        self._metrics.sent.labels(email.kind).inc()
        await self._record_sent(event.event_id)
        log.info("email sent", kind=email.kind)

    async def _release(self, event_id: UUID) -> None:
        try:
            await self._deliveries.release(event_id)
        except Exception as exc:
            # Only delays the retry until the claim expires by itself.
            log.warning("could not release delivery claim", error=repr(exc))

    async def _record_sent(self, event_id: UUID) -> None:
        """Mark the email sent, riding out a database outage while we hold the message.

        The relay has the email: giving up here would let a redelivery send it again. So we
        retry for up to `record_limit_seconds`, while the consumer's heartbeat keeps the
        message hidden and `_keep_claim` extends our claim whenever the database answers.
        Only that limit or shutdown ends the wait, and both are logged as errors.
        """
        keeping = asyncio.create_task(self._keep_claim(event_id))
        try:
            async with asyncio.timeout(self._record_limit_seconds):
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception_type(psycopg.OperationalError),
                    wait=wait_exponential(multiplier=0.1, max=1),
                    before_sleep=_log_record_failure,
                    reraise=True,
                ):
                    with attempt:
                        await self._deliveries.mark_sent(event_id)
        except (psycopg.OperationalError, TimeoutError) as exc:
            log.error(
                "email sent but not recorded; gave up, a redelivery may send it again",
                error=repr(exc),
                retried_for_seconds=self._record_limit_seconds,
            )
            raise
        except asyncio.CancelledError:
            log.error("email sent but not recorded; shutdown, a redelivery may send it again")
            raise
        finally:
            keeping.cancel()

    async def _keep_claim(self, event_id: UUID) -> None:
        """Extend our claim every third of its length, so that nobody takes it over while
        the record is retried; a failed extension waits for the next round."""
        interval = self._claim_seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                async with asyncio.timeout(interval):
                    await self._deliveries.extend_claim(event_id, lease_seconds=self._claim_seconds)
            except (psycopg.Error, TimeoutError) as exc:
                log.warning("could not extend the delivery claim", error=repr(exc))


def _log_record_failure(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    log.warning("could not record the sent email, retrying", error=repr(error))
