"""Stopping registration while its outbox relay is stuck on an SQS that never answers."""

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from starlette.applications import Starlette

from alta_devstack.ports import find_free_port
from alta_devstack.servers import ServerThread
from alta_registration.app import create_app
from alta_registration.settings import Settings


@pytest.fixture
def silent_sqs_endpoint() -> Iterator[str]:
    """Accepts connections and never answers: every SQS call hangs until its read timeout."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    accepted: list[socket.socket] = []
    stopping = threading.Event()

    def accept() -> None:
        while not stopping.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stopping.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


async def test_a_relay_stuck_on_sqs_does_not_hold_up_shutdown_past_the_grace(
    database_url: str,
    sqs_endpoint: str,  # for the dummy AWS credentials it sets
    silent_sqs_endpoint: str,
) -> None:
    # Built here rather than by the conftest factory, which stops its servers at teardown.
    settings = Settings(
        app_env="test",
        database_url=database_url,
        sqs_endpoint_url=silent_sqs_endpoint,
        email_queue_name="email",
        crm_queue_name="crm",
        outbox_poll_interval_seconds=0.05,
        graceful_timeout_seconds=1,
        authz_jwks_url="http://127.0.0.1:9/jwks",
    )
    app: Starlette = create_app(settings)
    server = ServerThread(app, find_free_port())
    server.start()
    body = {"email": "stuck@example.org", "name": "Ada", "password": "correct horse battery"}
    async with httpx.AsyncClient(base_url=server.url, timeout=15) as http:
        assert (await http.post("/registrations", json=body)).status_code == 202
    await asyncio.sleep(0.5)  # the relay is now waiting on SQS

    started = time.monotonic()
    await asyncio.to_thread(server.stop)
    # The SQS call alone would hang for 30 s (its read timeout), times its retries.
    assert time.monotonic() - started < 10
    # Nothing published, nothing lost: both events are still in the outbox.
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT queue FROM registration.outbox ORDER BY queue").fetchall()
    assert rows == [("crm",), ("email",)]
