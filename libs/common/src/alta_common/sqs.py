"""SQS: the client every service shares, and the long-polling consumer loop of the workers."""

import asyncio
import json
import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

import structlog
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from prometheus_client import CollectorRegistry
from tenacity import AsyncRetrying, stop_after_delay, wait_exponential

from alta_common.metrics import ConsumerMetrics
from alta_common.settings import SqsSettings

log = structlog.get_logger("alta.sqs")

# Longest an SQS long poll can wait; the HTTP read timeout must outlast it.
MAX_WAIT_SECONDS = 20


@asynccontextmanager
async def open_sqs_client(settings: SqsSettings) -> AsyncIterator[Any]:
    config = AioConfig(
        connect_timeout=5,
        read_timeout=MAX_WAIT_SECONDS + 10,
        retries={"max_attempts": 3, "mode": "standard"},
    )
    async with get_session().create_client(
        "sqs",
        region_name=settings.aws_region,
        endpoint_url=settings.sqs_endpoint_url,
        config=config,
    ) as client:
        yield client


async def queue_url(client: Any, name: str, *, wait_seconds: float = 60.0) -> str:
    """The queue's URL, waiting for the endpoint to come up (it may start after us)."""
    async for attempt in AsyncRetrying(
        stop=stop_after_delay(wait_seconds),
        wait=wait_exponential(multiplier=0.2, max=2),
        reraise=True,
    ):
        with attempt:
            response = await client.get_queue_url(QueueName=name)
    return str(response["QueueUrl"])


@dataclass(frozen=True)
class OutgoingMessage:
    id: str
    body: str
    request_id: str | None = None


async def send_batch(client: Any, url: str, messages: list[OutgoingMessage]) -> set[str]:
    """Send up to 10 messages; returns the ids SQS accepted (the rest must be sent again)."""
    entries = []
    for message in messages:
        entry: dict[str, Any] = {"Id": message.id, "MessageBody": message.body}
        if message.request_id:
            entry["MessageAttributes"] = {
                "request_id": {"DataType": "String", "StringValue": message.request_id}
            }
        entries.append(entry)
    response = await client.send_message_batch(QueueUrl=url, Entries=entries)
    for failed in response.get("Failed", []):
        log.warning("sqs send failed", queue=url, entry=failed.get("Id"), code=failed.get("Code"))
    return {ok["Id"] for ok in response.get("Successful", [])}


@dataclass(frozen=True)
class ReceivedMessage:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    request_id: str | None

    def json(self) -> Any:
        return json.loads(self.body)


class RetryLater(Exception):
    """The message could not be handled now; SQS should deliver it again after `delay`."""

    def __init__(self, reason: str, *, delay_seconds: float | None = None) -> None:
        super().__init__(reason)
        self.delay_seconds = delay_seconds


class Reject(Exception):
    """The message can never be handled; it goes straight to the dead-letter queue."""


MessageHandler = Callable[[ReceivedMessage], Awaitable[None]]


class SqsConsumer:
    """Long-polls one queue and hands each message to `handler`.

    A message is deleted only after its handler returned. A handler that raises leaves the
    message to SQS, made visible again after an exponential backoff, until the queue's redrive
    policy moves it to the dead-letter queue; `Reject` moves it there at once.

    While a handler runs, a heartbeat extends the message's visibility every half
    `visibility_timeout_seconds`, for at most `max_handling_seconds` in all, so slow work is not
    handed to a second consumer meanwhile. `stop()` ends polling at once (an open long poll is
    abandoned); handlers in progress get `grace_seconds` to finish, then are cancelled and their
    messages made visible again at once.
    """

    def __init__(
        self,
        client: Any,
        *,
        queue_url: str,
        dead_letter_queue_url: str,
        handler: MessageHandler,
        pollers: int = 1,
        batch_size: int = 10,
        wait_seconds: int = MAX_WAIT_SECONDS,
        backoff_base_seconds: float = 2.0,
        backoff_max_seconds: float = 300.0,
        visibility_timeout_seconds: int = 30,
        max_handling_seconds: float = 900.0,
        grace_seconds: float = 20.0,
        metrics: ConsumerMetrics | None = None,
    ) -> None:
        self.client = client
        self.queue_url = queue_url
        self.dead_letter_queue_url = dead_letter_queue_url
        self.handler = handler
        self.pollers = pollers
        self.batch_size = batch_size
        self.wait_seconds = wait_seconds
        self.backoff_base_seconds = backoff_base_seconds
        self.backoff_max_seconds = backoff_max_seconds
        self.visibility_timeout_seconds = visibility_timeout_seconds
        self.max_handling_seconds = max_handling_seconds
        self.grace_seconds = grace_seconds
        # Without a registry of the app's, the counts go to one nobody scrapes.
        self.metrics = metrics or ConsumerMetrics(CollectorRegistry(), "unscraped")
        # Loop time of the last successful receive: what readiness looks at.
        self._last_receive_ok: float | None = None
        self._stopping = asyncio.Event()
        self._in_hand: set[asyncio.Task[None]] = set()

    def stop(self) -> None:
        self._stopping.set()

    def check_healthy(self) -> None:
        """Readiness: raises unless a receive succeeded recently (SQS reachable, credentials ok)."""
        last = self._last_receive_ok
        now = asyncio.get_running_loop().time()
        # A long poll takes up to `wait_seconds`; allow a few failed rounds before complaining.
        if last is None or now - last > self.wait_seconds + 30:
            raise RuntimeError("no successful receive from the queue recently")

    async def refresh_dead_letter_depth(self) -> None:
        """Read the dead-letter queue's depth into the metrics (called at scrape time)."""
        response = await self.client.get_queue_attributes(
            QueueUrl=self.dead_letter_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        depth = int(response["Attributes"]["ApproximateNumberOfMessages"])
        self.metrics.dead_letter_depth.set(depth)

    async def run(self) -> None:
        """Consume until `stop()`; returns once every message in hand is done or released."""
        # Counted as healthy from the start; the first long poll may take `wait_seconds`.
        self._last_receive_ok = asyncio.get_running_loop().time()
        async with asyncio.TaskGroup() as group:
            for _ in range(self.pollers):
                group.create_task(self._poll_loop())
            group.create_task(self._enforce_grace())

    async def _enforce_grace(self) -> None:
        await self._stopping.wait()
        if not self._in_hand:
            return
        log.info("finishing messages in hand", count=len(self._in_hand), grace=self.grace_seconds)
        _, unfinished = await asyncio.wait(set(self._in_hand), timeout=self.grace_seconds)
        for task in unfinished:
            task.cancel()

    async def _poll_loop(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                messages = await self._receive_unless_stopping()
            except Exception as exc:
                failures += 1
                delay = min(30.0, 0.5 * 2**failures) * random.uniform(0.5, 1.0)  # noqa: S311
                log.warning(
                    "sqs receive failed", queue=self.queue_url, error=repr(exc), retry_in=delay
                )
                await self._sleep_unless_stopping(delay)
                continue
            failures = 0
            tasks = [asyncio.create_task(self._handle(m)) for m in messages]
            self._in_hand.update(tasks)
            try:
                outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            finally:
                self._in_hand.difference_update(tasks)
            for outcome in outcomes:
                # A message whose handling broke stays in the queue; the loop must go on.
                if isinstance(outcome, Exception):
                    log.error("message handling crashed", error=repr(outcome))

    async def _receive_unless_stopping(self) -> list[ReceivedMessage]:
        receive = asyncio.ensure_future(self._receive())
        stopping = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait({receive, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not receive.done():
            # Messages a cancelled long poll had already taken reappear after the queue's
            # visibility timeout: SQS gives no way to hand back what we never saw.
            receive.cancel()
            return []
        messages = receive.result()
        if self._stopping.is_set() and messages:
            await asyncio.gather(*(self._release(m) for m in messages))
            return []
        return messages

    async def _sleep_unless_stopping(self, seconds: float) -> None:
        with suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _receive(self) -> list[ReceivedMessage]:
        response = await self.client.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=self.wait_seconds,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
            MessageAttributeNames=["All"],
        )
        self._last_receive_ok = asyncio.get_running_loop().time()
        messages = []
        for raw in response.get("Messages", []):
            attributes = raw.get("MessageAttributes", {})
            messages.append(
                ReceivedMessage(
                    message_id=raw["MessageId"],
                    receipt_handle=raw["ReceiptHandle"],
                    body=raw["Body"],
                    receive_count=int(raw.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
                    request_id=attributes.get("request_id", {}).get("StringValue"),
                )
            )
        self.metrics.received.inc(len(messages))
        return messages

    async def _handle(self, message: ReceivedMessage) -> None:
        with structlog.contextvars.bound_contextvars(
            request_id=message.request_id, message_id=message.message_id
        ):
            try:
                await self._call_handler(message)
            except asyncio.CancelledError:
                # Cut off by shutdown: hand the message back now rather than after the timeout.
                await self._release(message)
                raise
            except Reject as exc:
                await self._dead_letter(message, str(exc))
            except RetryLater as exc:
                await self._retry_later(message, str(exc), exc.delay_seconds)
            except Exception as exc:
                log.exception("message handler failed", receive_count=message.receive_count)
                await self._retry_later(message, repr(exc), None)
            else:
                await self._delete(message)
                self.metrics.processed.inc()

    async def _call_handler(self, message: ReceivedMessage) -> None:
        heartbeat = asyncio.create_task(self._heartbeat(message))
        try:
            await self.handler(message)
        finally:
            heartbeat.cancel()

    async def _heartbeat(self, message: ReceivedMessage) -> None:
        """Keep the message invisible while its handler runs, up to `max_handling_seconds`."""
        interval = self.visibility_timeout_seconds / 2
        extended_for = 0.0
        while extended_for + interval <= self.max_handling_seconds:
            await asyncio.sleep(interval)
            extended_for += interval
            try:
                await self.client.change_message_visibility(
                    QueueUrl=self.queue_url,
                    ReceiptHandle=message.receipt_handle,
                    VisibilityTimeout=self.visibility_timeout_seconds,
                )
            except Exception as exc:
                log.warning("could not extend message visibility", error=repr(exc))
                continue
            log.info("message visibility extended", in_hand_seconds=extended_for)
            self.metrics.visibility_extensions.inc()
        log.error(
            "message handling exceeds its limit; it will be delivered again",
            max_handling_seconds=self.max_handling_seconds,
        )

    async def _release(self, message: ReceivedMessage) -> None:
        """Make the message visible again at once (shutdown: someone else should take it)."""
        self.metrics.released.inc()
        try:
            await self.client.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=message.receipt_handle, VisibilityTimeout=0
            )
        except Exception as exc:
            log.warning("could not release message", error=repr(exc))
        else:
            log.info("message released for another consumer")

    async def _delete(self, message: ReceivedMessage) -> None:
        # botocore retries a failed call itself (standard mode); a delete that still fails
        # is logged, never ignored, and the redelivery is recognised by the handler's
        # idempotency and deleted then.
        try:
            await self.client.delete_message(
                QueueUrl=self.queue_url, ReceiptHandle=message.receipt_handle
            )
        except Exception as exc:
            log.warning("could not delete a handled message", error=repr(exc))

    async def _retry_later(
        self, message: ReceivedMessage, reason: str, delay: float | None
    ) -> None:
        self.metrics.retried.inc()
        if delay is None:
            delay = self.backoff_base_seconds * 2 ** (message.receive_count - 1)
        # SQS allows at most 12 hours of invisibility.
        seconds = math.ceil(min(delay, self.backoff_max_seconds, 43_200))
        log.warning(
            "message will be retried",
            reason=reason,
            retry_in=seconds,
            receive_count=message.receive_count,
        )
        try:
            await self.client.change_message_visibility(
                QueueUrl=self.queue_url,
                ReceiptHandle=message.receipt_handle,
                VisibilityTimeout=seconds,
            )
        except Exception as exc:
            # The message reappears after the queue's own visibility timeout instead.
            log.warning("could not delay message", error=repr(exc))

    async def _dead_letter(self, message: ReceivedMessage, reason: str) -> None:
        attributes: dict[str, Any] = {
            "dead_letter_reason": {"DataType": "String", "StringValue": reason[:1000] or "rejected"}
        }
        if message.request_id:
            attributes["request_id"] = {"DataType": "String", "StringValue": message.request_id}
        try:
            await self.client.send_message(
                QueueUrl=self.dead_letter_queue_url,
                MessageBody=message.body,
                MessageAttributes=attributes,
            )
        except Exception as exc:
            # Left in the queue: it comes back and is rejected again, or the redrive takes it.
            log.warning("could not dead-letter a message", error=repr(exc), reason=reason)
            return
        self.metrics.dead_lettered.inc()
        log.error("message dead-lettered", reason=reason)
        await self._delete(message)
