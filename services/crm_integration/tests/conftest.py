"""Fixtures that run crm_integration for real against the devstack servers."""

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiobotocore.session import get_session
from pydantic import SecretStr
from starlette.applications import Starlette

from alta_common.events import RegistrationEvent
from alta_crm_integration.app import create_app
from alta_crm_integration.handler import DeliveryStats
from alta_crm_integration.settings import Settings
from alta_devstack.crm_standin import CrmStandin
from alta_devstack.ports import find_free_port
from alta_devstack.servers import ServerThread
from alta_devstack.sqs import QueueUrls


@dataclass(frozen=True)
class RunningApp:
    app: Starlette
    url: str

    @property
    def stats(self) -> DeliveryStats:
        stats: DeliveryStats = self.app.state.delivery_stats
        return stats


@pytest.fixture
def settings_factory(
    database_url: str,
    sqs_endpoint: str,
    sqs_queues: dict[str, QueueUrls],
    crm_standin: CrmStandin,
) -> Callable[..., Settings]:
    """Settings of one replica, pointing at this test's servers, with short waits."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "app_env": "test",
            "database_url": SecretStr(database_url),
            "sqs_endpoint_url": sqs_endpoint,
            "aws_region": "us-east-1",
            "crm_queue_name": sqs_queues["crm"].name,
            "crm_dlq_name": sqs_queues["crm"].dlq_name,
            "crm_url": crm_standin.url,
            "crm_api_token": SecretStr(crm_standin.api_token),
            "crm_timeout_seconds": 2.0,
            "crm_max_attempts": 3,
            "crm_rate_limit_per_second": 90,
            # Three attempts of 5 s wait and 2 s timeout fit the devstack queues' 30 s.
            "crm_rate_limit_max_wait_seconds": 5,
            "sqs_visibility_timeout_seconds": 30,
            "sqs_wait_seconds": 1,
            "consumer_pollers": 2,
            "retry_backoff_base_seconds": 0.2,
        }
        return Settings(**(values | overrides))

    return build


@pytest.fixture
def run_app(
    settings_factory: Callable[..., Settings],
) -> Iterator[Callable[[Settings], RunningApp]]:
    """Starts the real app (lifespan included) under uvicorn and waits until it is ready.

    Depends on `settings_factory` so the apps stop before the servers they use go away.
    """
    servers: list[ServerThread] = []

    def run(settings: Settings) -> RunningApp:
        app = create_app(settings)
        server = ServerThread(app, find_free_port())
        server.start()
        servers.append(server)
        # Ready means migrated, connected and consuming.
        deadline = time.monotonic() + 20
        while httpx.get(server.url + "/readyz").status_code != 200:
            assert time.monotonic() < deadline, "the app never became ready"
            time.sleep(0.05)
        return RunningApp(app, server.url)

    yield run
    for server in servers:
        server.stop()


@pytest.fixture
async def sqs_client(sqs_endpoint: str) -> AsyncIterator[Any]:
    async with get_session().create_client(
        "sqs", region_name="us-east-1", endpoint_url=sqs_endpoint
    ) as client:
        yield client


@pytest.fixture
def publish(sqs_client: Any, sqs_queues: dict[str, QueueUrls]) -> Callable[..., Awaitable[None]]:
    """Puts events on the crm queue the way registration's outbox relay does."""

    async def send(*events: RegistrationEvent) -> None:
        for start in range(0, len(events), 10):
            entries = []
            for index, event in enumerate(events[start : start + 10]):
                entry: dict[str, Any] = {"Id": str(index), "MessageBody": event.model_dump_json()}
                if event.request_id:
                    entry["MessageAttributes"] = {
                        "request_id": {"DataType": "String", "StringValue": event.request_id}
                    }
                entries.append(entry)
            response = await sqs_client.send_message_batch(
                QueueUrl=sqs_queues["crm"].url, Entries=entries
            )
            assert not response.get("Failed")

    return send
