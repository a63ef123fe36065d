"""Runs the real email sender against the devstack fixtures."""

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiobotocore.session import get_session
from pydantic import SecretStr

from alta_devstack.ports import find_free_port
from alta_devstack.servers import ServerThread
from alta_devstack.smtp_sink import SmtpSink
from alta_devstack.sqs import QueueUrls
from alta_email_sender.app import create_app
from alta_email_sender.settings import Settings

from .email_sender_support import Queues, StartEmailSender


@pytest.fixture
async def email_queues(
    sqs_endpoint: str, sqs_queues: dict[str, QueueUrls]
) -> AsyncIterator[Queues]:
    email = sqs_queues["email"]
    async with get_session().create_client(
        "sqs", region_name="us-east-1", endpoint_url=sqs_endpoint
    ) as client:
        yield Queues(client, email.url, email.dlq_url)


@pytest.fixture
def email_settings(
    database_url: str, sqs_endpoint: str, sqs_queues: dict[str, QueueUrls], smtp_sink: SmtpSink
) -> Settings:
    email = sqs_queues["email"]
    return Settings(
        app_env="test",
        port=find_free_port(),
        database_url=SecretStr(database_url),
        sqs_endpoint_url=sqs_endpoint,
        email_queue_name=email.name,
        email_dlq_name=email.dlq_name,
        public_url="https://alta.example",
        smtp_host=smtp_sink.host,
        smtp_port=smtp_sink.port,
        smtp_timeout_seconds=2,
        sqs_wait_seconds=1,
        retry_backoff_base_seconds=0.2,
    )


@pytest.fixture
def start_email_sender(email_settings: Settings) -> Iterator[StartEmailSender]:
    """Start one replica of the service; keyword arguments override its settings."""
    servers: list[ServerThread] = []

    def start(**overrides: Any) -> ServerThread:
        settings = Settings(
            **{**email_settings.model_dump(), "port": find_free_port(), **overrides}
        )
        server = ServerThread(create_app(settings), settings.port, settings.host)
        server.start(timeout=30)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
