"""CRM faults: Retry-After as an HTTP date or missing, a CRM too slow to answer; and /metrics."""

import asyncio
import time
from collections.abc import Callable, Iterator
from email.utils import formatdate
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from alta_devstack.crm_standin import CrmStandin
from alta_devstack.ports import find_free_port
from alta_devstack.servers import ServerThread

from .conftest import RunningApp
from .test_crm_integration_delivery import Publish, make_event, requests_with_key, wait_for


def metric(url: str, name: str, **labels: str) -> float | None:
    """The sample's value, or None when the service does not expose it."""
    text = httpx.get(f"{url}/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


async def test_a_429_with_retry_after_as_an_http_date_is_waited_out(
    settings_factory: Callable[..., Any],
    run_app: Callable[..., RunningApp],
    publish: Publish,
    crm_standin: CrmStandin,
) -> None:
    app = run_app(settings_factory())
    # Whole seconds only in an HTTP date: 3 s ahead of `forced_at` is more than 2 s after it.
    forced_at = time.time()
    crm_standin.force([429], retry_after=formatdate(forced_at + 3, usegmt=True))
    event = make_event()

    await publish(event)

    await wait_for(lambda: len(requests_with_key(crm_standin, event)) == 1)
    [accepted] = requests_with_key(crm_standin, event)
    assert accepted["received_at"] - forced_at >= 2.0
    assert app.stats.crm_requests == 2
    assert metric(app.url, "alta_crm_requests_total", status="429") == 1
    assert metric(app.url, "alta_crm_requests_total", status="201") == 1


async def test_a_429_without_retry_after_is_retried_and_the_contact_arrives_once(
    settings_factory: Callable[..., Any],
    run_app: Callable[..., RunningApp],
    publish: Publish,
    crm_standin: CrmStandin,
) -> None:
    app = run_app(settings_factory())
    crm_standin.force([429, 429])
    event = make_event()

    await publish(event)

    await wait_for(lambda: app.stats.synced == 1)
    assert len(requests_with_key(crm_standin, event)) == 1
    assert app.stats.crm_rate_limited == 2
    assert app.stats.retried_later == 0


@pytest.fixture
def slow_crm() -> Iterator[tuple[str, list[str]]]:
    """A CRM whose first answer comes after 3 s (past the client's 2 s timeout), then at once.

    Records the Idempotency-Key of every request it received, answered or not.
    """
    keys: list[str] = []

    async def create(request: Request) -> JSONResponse:
        keys.append(request.headers["idempotency-key"])
        if len(keys) == 1:
            await asyncio.sleep(3)
        return JSONResponse(await request.json(), status_code=201)

    server = ServerThread(
        Starlette(routes=[Route("/contacts", create, methods=["POST"])]), find_free_port()
    )
    server.start()
    yield server.url, keys
    server.stop()


async def test_a_crm_timeout_is_retried_with_the_same_idempotency_key(
    settings_factory: Callable[..., Any],
    run_app: Callable[..., RunningApp],
    publish: Publish,
    slow_crm: tuple[str, list[str]],
    sqs_queues: dict[str, Any],
) -> None:
    url, keys = slow_crm
    app = run_app(settings_factory(crm_url=url, crm_timeout_seconds=2.0))
    event = make_event()

    await publish(event)

    await wait_for(lambda: app.stats.synced == 1)
    # The CRM may have stored the first request: the key lets it answer the retry with it.
    assert keys == [str(event.event_id)] * 2
    assert metric(app.url, "alta_crm_requests_total", status="no_answer") == 1
    assert metric(app.url, "alta_crm_requests_total", status="201") == 1
    assert metric(app.url, "alta_crm_rate_limiter_wait_seconds_count") == 2
    queue = sqs_queues["crm"].name
    await wait_for(lambda: metric(app.url, "alta_sqs_messages_processed_total", queue=queue) == 1)
    assert metric(app.url, "alta_sqs_messages_received_total", queue=queue) == 1
    assert metric(app.url, "alta_sqs_dead_letter_messages", queue=queue) == 0
