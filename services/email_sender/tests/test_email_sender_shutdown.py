"""SIGTERM to a real email sender process: during a long poll, and mid-message."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from alta_devstack.ports import find_free_port
from alta_devstack.smtp_sink import SmtpSink
from alta_email_sender.settings import Settings

from .email_sender_support import Queues, StartEmailSender, eventually, make_event

GRACE_SECONDS = 2
DRAIN_DELAY_SECONDS = 1


class EmailSenderProcess:
    def __init__(self, settings: Settings, smtp_port: int, log_path: Path) -> None:
        self.url = f"http://127.0.0.1:{settings.port}"
        env = {
            **os.environ,
            "APP_ENV": "test",
            "PORT": str(settings.port),
            "DATABASE_URL": settings.database_url.get_secret_value(),
            "SQS_ENDPOINT_URL": settings.sqs_endpoint_url or "",
            "EMAIL_QUEUE_NAME": settings.email_queue_name,
            "EMAIL_DLQ_NAME": settings.email_dlq_name,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp_port),
            "SMTP_TIMEOUT_SECONDS": "10",
            "SQS_WAIT_SECONDS": "20",
            "GRACEFUL_TIMEOUT_SECONDS": str(GRACE_SECONDS),
            "SHUTDOWN_DELAY_SECONDS": str(DRAIN_DELAY_SECONDS),
        }
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "alta_email_sender"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    async def wait_ready(self) -> None:
        async def ready() -> bool:
            assert self.process.poll() is None, "the service exited during start-up"
            try:
                async with httpx.AsyncClient() as http:
                    return (await http.get(f"{self.url}/readyz")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(ready, within=60, interval=0.2)

    def terminate_and_wait(self, within: float) -> float:
        """Send SIGTERM; returns how long the process took to exit."""
        sent = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=within)
        return time.monotonic() - sent

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()


@pytest.fixture
def hanging_smtp_server() -> Iterator[tuple[int, list[socket.socket]]]:
    """Accepts connections and never says a word: a send stays in progress until cut off."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = False

    def accept() -> None:
        while not stop:
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1], accepted
    stop = True
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


StartProcess = Callable[[int], EmailSenderProcess]


@pytest.fixture
def start_process(email_settings: Settings, tmp_path: Path) -> Iterator[StartProcess]:
    started: list[EmailSenderProcess] = []

    def start(smtp_port: int) -> EmailSenderProcess:
        settings = Settings(**{**email_settings.model_dump(), "port": find_free_port()})
        process = EmailSenderProcess(settings, smtp_port, tmp_path / f"sender-{len(started)}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


async def test_sigterm_during_a_long_poll_fails_readiness_then_exits_within_the_grace(
    start_process: StartProcess, smtp_sink: SmtpSink
) -> None:
    sender = start_process(smtp_sink.port)
    await sender.wait_ready()
    await asyncio.sleep(1)  # the consumer's 20 s long poll is open

    sender.process.send_signal(signal.SIGTERM)
    async with httpx.AsyncClient() as http:
        # Still serving during the drain delay, but no longer ready.
        readiness = await http.get(f"{sender.url}/readyz")
    assert readiness.status_code == 503
    assert readiness.json()["status"] == "draining"

    started = time.monotonic()
    await asyncio.to_thread(sender.process.wait, 30)
    # Delay + grace + start-up of the interpreter's shutdown, far from the 20 s poll.
    assert time.monotonic() - started < DRAIN_DELAY_SECONDS + GRACE_SECONDS + 8
    assert sender.process.returncode in (0, -signal.SIGTERM)


async def test_sigterm_mid_send_hands_the_message_back_and_it_is_sent_once(
    start_process: StartProcess,
    hanging_smtp_server: tuple[int, list[socket.socket]],
    email_queues: Queues,
    start_email_sender: StartEmailSender,
    smtp_sink: SmtpSink,
) -> None:
    hanging_port, connections = hanging_smtp_server
    sender = start_process(hanging_port)
    await sender.wait_ready()
    event = make_event()
    await email_queues.publish(event.model_dump_json())
    await eventually(lambda: connections, within=30)  # the send is in progress

    took = await asyncio.to_thread(sender.terminate_and_wait, 30)
    assert took < DRAIN_DELAY_SECONDS + GRACE_SECONDS + 8

    # A healthy replica sends it now: the message was handed back, and the delivery claim
    # freed, at once rather than after the 30 s visibility timeout.
    start_email_sender()
    [message] = await eventually(smtp_sink.messages, within=15)
    assert message["Message-ID"] == f"<{event.event_id}@alta.email>"
    await eventually(email_queues.is_drained)
    assert len(smtp_sink.messages()) == 1
