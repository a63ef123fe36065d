"""One `crm` queue message: claim the event, send it to the CRM within the shared rate limit,
retry what may pass later, and tell the consumer whether to delete, delay or dead-letter it."""

import time
import uuid
from dataclasses import dataclass

import httpx
import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from pydantic import ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    stop_before_delay,
)

from alta_common.events import RegistrationEvent
from alta_common.sqs import ReceivedMessage, Reject, RetryLater
from alta_crm_integration.crm_client import SUPPORTED_EVENT_TYPES, CrmAnswer, CrmClient, Outcome
from alta_crm_integration.rate_limiter import Admission, RateLimiterSaturated, SharedRateLimiter
from alta_crm_integration.repository import ClaimState, DeliveryRepository
from alta_crm_integration.settings import Settings

log = structlog.get_logger("alta.crm_integration")

# SQS counts visibility in whole seconds, and 0 would hand the message straight back.
MIN_RETRY_DELAY_SECONDS = 1.0

_NO_ANSWER = (httpx.TransportError, TimeoutError)


@dataclass
class DeliveryStats:
    synced: int = 0
    already_synced: int = 0
    retried_later: int = 0
    rejected: int = 0
    crm_requests: int = 0
    crm_rate_limited: int = 0
    crm_unavailable: int = 0
    crm_unreachable: int = 0
    limiter_wait_seconds_total: float = 0.0
    limiter_wait_seconds_max: float = 0.0
    limiter_late_slots: int = 0


class CrmMetrics:
    """CRM requests by answer, and the time attempts spent waiting for the shared limiter."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "alta_crm_requests_total",
            "Requests sent to the CRM, by HTTP status ('no_answer': timeout or connection error).",
            ["status"],
            registry=registry,
        )
        self.limiter_wait = Histogram(
            "alta_crm_rate_limiter_wait_seconds",
            "Time one CRM attempt waited for an in-flight permit and a send slot.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=registry,
        )


@dataclass
class _Progress:
    attempts: int = 0
    last_status: int | None = None


class CrmSyncHandler:
    def __init__(
        self,
        *,
        repository: DeliveryRepository,
        limiter: SharedRateLimiter,
        crm: CrmClient,
        settings: Settings,
        metrics: CrmMetrics,
    ) -> None:
        self._repository = repository
        self._limiter = limiter
        self._crm = crm
        self._settings = settings
        self._metrics = metrics
        self.stats = DeliveryStats()

    async def __call__(self, message: ReceivedMessage) -> None:
        try:
            event = _parse(message)
            # Left bound so that the consumer's own line about this message (deleted, retried,
            # dead-lettered) names the event too; each message is handled in a task of its own.
            structlog.contextvars.bind_contextvars(
                event_id=str(event.event_id), event_type=event.type
            )
            await self._sync(event, message.receive_count)
        except RetryLater:
            self.stats.retried_later += 1
            raise
        except Reject:
            self.stats.rejected += 1
            raise

    async def _sync(self, event: RegistrationEvent, receive_count: int) -> None:
        # The whole handling, retries included, ends well before SQS would hand the message
        # to another consumer; the lease lasts as long as that invisibility.
        deadline = time.monotonic() + self._settings.handling_budget_seconds
        owner = uuid.uuid4()
        claim = await self._repository.claim(
            event_id=event.event_id,
            user_id=event.user_id,
            event_type=event.type,
            owner=owner,
            lease_seconds=self._settings.sqs_visibility_timeout_seconds,
        )
        if claim.state is ClaimState.SYNCED:
            self.stats.already_synced += 1
            log.info("event already synced, message dropped")
            return
        if claim.state is ClaimState.BUSY:
            # Come back once the holder is likely done, and at the latest when its lease ends.
            delay = min(self._redelivery_delay(receive_count), claim.lease_remaining_seconds)
            raise RetryLater(
                "another consumer is sending this event",
                delay_seconds=max(MIN_RETRY_DELAY_SECONDS, delay),
            )

        progress = _Progress()
        synced = False
        try:
            answer = await self._send_with_retries(event, progress, deadline)
            if answer.outcome is Outcome.DELIVERED:
                await self._repository.mark_synced(
                    event_id=event.event_id, attempts=progress.attempts, crm_status=answer.status
                )
                synced = True
                self.stats.synced += 1
                log.info("event synced", status=answer.status, attempts=progress.attempts)
                return
            raise _failure(event, answer, progress, self._redelivery_delay(receive_count))
        except RateLimiterSaturated as exc:
            # Giving the message back spends one of its receives, and past the queue's
            # maxReceiveCount a healthy event is dead-lettered. It should be rare: at most
            # replicas x CRM_MAX_IN_FLIGHT slots are reserved ahead of us (0.4 s of them for two
            # replicas at 90/s), far less than CRM_RATE_LIMIT_MAX_WAIT_SECONDS; it takes dozens
            # of replicas, or a retry near the end of its budget. The delay lets those slots go.
            delay = max(
                self._settings.crm_rate_limit_max_wait_seconds,
                self._redelivery_delay(receive_count),
            )
            raise RetryLater(str(exc), delay_seconds=delay) from exc
        except _NO_ANSWER as exc:
            raise RetryLater(
                f"CRM did not answer: {exc!r}", delay_seconds=self._redelivery_delay(receive_count)
            ) from exc
        finally:
            if not synced:
                await self._release(event, owner, progress)

    async def _send_with_retries(
        self, event: RegistrationEvent, progress: _Progress, deadline: float
    ) -> CrmAnswer:
        # Stop before a wait after which the next attempt could no longer finish in time.
        time_left = deadline - time.monotonic() - self._settings.crm_timeout_seconds
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(_NO_ANSWER) | retry_if_result(_is_retryable),
            wait=self._wait,
            stop=stop_after_attempt(self._settings.crm_max_attempts) | stop_before_delay(time_left),
            # Out of attempts: hand back the last answer (or raise its error) for the caller to
            # classify, rather than tenacity's RetryError.
            retry_error_callback=_last_outcome,
        )
        answer: CrmAnswer = await retrying(self._attempt, event, progress, deadline)
        return answer

    def _redelivery_delay(self, receive_count: int) -> float:
        """How long SQS keeps a message we give back: longer with each delivery of it."""
        backoff = self._settings.retry_backoff_base_seconds * 2.0 ** (receive_count - 1)
        return max(MIN_RETRY_DELAY_SECONDS, backoff)

    def _wait(self, state: RetryCallState) -> float:
        outcome = state.outcome
        if outcome is not None and not outcome.failed:
            retry_after = outcome.result().retry_after_seconds
            if retry_after is not None:
                return float(retry_after)
        base = self._settings.retry_backoff_base_seconds
        return base * 2.0 ** (state.attempt_number - 1)

    async def _attempt(
        self, event: RegistrationEvent, progress: _Progress, deadline: float
    ) -> CrmAnswer:
        # Every attempt, retries included, spends a slot of the shared budget.
        room = deadline - time.monotonic() - self._settings.crm_timeout_seconds
        async with self._limiter.admit(
            max_wait_seconds=min(self._settings.crm_rate_limit_max_wait_seconds, room)
        ) as admission:
            self._record_admission(admission)
            progress.attempts += 1
            self.stats.crm_requests += 1
            context = {
                "attempt": progress.attempts,
                "limiter_wait_ms": round(admission.waited_seconds * 1000, 1),
                "limiter_late_slots": admission.late_slots,
            }
            started = time.monotonic()
            try:
                answer = await self._crm.send(event)
            except _NO_ANSWER as exc:
                self.stats.crm_unreachable += 1
                self._metrics.requests.labels("no_answer").inc()
                log.warning("crm request got no answer", error=repr(exc), **context)
                raise
        progress.last_status = answer.status
        self._metrics.requests.labels(str(answer.status)).inc()
        if answer.outcome is Outcome.RATE_LIMITED:
            self.stats.crm_rate_limited += 1
        elif answer.outcome is Outcome.UNAVAILABLE:
            self.stats.crm_unavailable += 1
        log.info(
            "crm request",
            status=answer.status,
            outcome=answer.outcome.value,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
            **context,
        )
        return answer

    def _record_admission(self, admission: Admission) -> None:
        seconds = admission.waited_seconds
        self._metrics.limiter_wait.observe(seconds)
        self.stats.limiter_wait_seconds_total += seconds
        self.stats.limiter_wait_seconds_max = max(self.stats.limiter_wait_seconds_max, seconds)
        self.stats.limiter_late_slots += admission.late_slots

    async def _release(
        self, event: RegistrationEvent, owner: uuid.UUID, progress: _Progress
    ) -> None:
        try:
            await self._repository.release(
                event_id=event.event_id,
                owner=owner,
                attempts=progress.attempts,
                crm_status=progress.last_status,
            )
        except Exception as exc:
            # The lease then simply runs out; the message is retried either way.
            log.warning("could not release delivery lease", error=repr(exc))


def _parse(message: ReceivedMessage) -> RegistrationEvent:
    try:
        event = RegistrationEvent.model_validate_json(message.body)
    except ValidationError as exc:
        # Field locations only: the values may hold an address or a name.
        fields = sorted({".".join(map(str, error["loc"])) or "body" for error in exc.errors()})
        raise Reject(f"invalid registration event: {', '.join(fields)}") from exc
    if event.type not in SUPPORTED_EVENT_TYPES:
        raise Reject(f"unexpected event type {event.type}")
    return event


def _failure(
    event: RegistrationEvent, answer: CrmAnswer, progress: _Progress, redelivery_delay: float
) -> Exception:
    """What to tell the consumer about an answer that is not a success."""
    if answer.outcome is Outcome.NOT_FOUND and event.type == "registration.confirmed":
        return RetryLater(
            "contact not in the CRM yet (its create is still on the way)",
            delay_seconds=redelivery_delay,
        )
    if answer.outcome is Outcome.RATE_LIMITED:
        delay = max(MIN_RETRY_DELAY_SECONDS, answer.retry_after_seconds or 0.0)
        return RetryLater(
            f"CRM rate limited after {progress.attempts} attempts", delay_seconds=delay
        )
    if answer.outcome is Outcome.UNAVAILABLE:
        return RetryLater(
            f"CRM answered HTTP {answer.status} after {progress.attempts} attempts",
            delay_seconds=redelivery_delay,
        )
    log.error("crm refused event", status=answer.status, attempts=progress.attempts)
    return Reject(f"CRM refused {event.type} with HTTP {answer.status}")


def _is_retryable(answer: CrmAnswer) -> bool:
    return answer.retryable


def _last_outcome(state: RetryCallState) -> CrmAnswer:
    assert state.outcome is not None
    answer: CrmAnswer = state.outcome.result()
    return answer
