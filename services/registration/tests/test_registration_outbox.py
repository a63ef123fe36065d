"""The outbox relay: nothing lost while SQS is down, nothing doubled by several replicas."""

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from alta_devstack.ports import find_free_port
from alta_devstack.sqs import SqsServer, create_queues

from .conftest import RegistrationService, drain_queue


async def outbox_lag(service: RegistrationService) -> float:
    async with httpx.AsyncClient(base_url=service.url) as client:
        text = (await client.get("/metrics")).text
    [family] = [
        f for f in text_string_to_metric_families(text) if f.name == "alta_outbox_lag_seconds"
    ]
    return float(family.samples[0].value)


async def wait_until(predicate: Callable[[], bool], within: float = 15) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def test_sign_ups_succeed_while_sqs_is_down_and_are_published_when_it_returns(
    registration_factory: Callable[..., RegistrationService],
) -> None:
    port = find_free_port()
    sqs = SqsServer(port=port)
    # The service starts, and stays ready, with SQS unreachable.
    service = registration_factory(
        sqs_endpoint_url=sqs.endpoint_url, email_queue_name="email", crm_queue_name="crm"
    )
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=15) as client:
            assert (await client.get("/readyz")).status_code == 200
            for i in range(3):
                body = {"email": f"u{i}@example.com", "name": "U", "password": "long enough pw"}
                assert (await client.post("/registrations", json=body)).status_code == 202
        assert service.sql("SELECT count(*) FROM registration.outbox") == [(6,)]
        await asyncio.sleep(0.5)
        assert await outbox_lag(service) >= 0.5

        sqs.start()
        queues = await create_queues(sqs.endpoint_url, ["email", "crm"])
        await wait_until(lambda: service.sql("SELECT count(*) FROM registration.outbox") == [(0,)])
        assert await outbox_lag(service) == 0
        emails = await drain_queue(sqs.endpoint_url, queues["email"].url, expect=3)
        assert sorted(e["email"] for e in emails) == [f"u{i}@example.com" for i in range(3)]
    finally:
        sqs.stop()


async def test_two_replicas_relay_each_event_once(
    registration_factory: Callable[..., RegistrationService], sqs_endpoint: str
) -> None:
    replicas = [registration_factory(), registration_factory()]
    async with httpx.AsyncClient(timeout=30) as client:

        async def sign_up(i: int) -> Any:
            body = {"email": f"p{i}@example.com", "name": "P", "password": "long enough pw"}
            return await client.post(f"{replicas[i % 2].url}/registrations", json=body)

        responses = await asyncio.gather(*(sign_up(i) for i in range(20)))
    assert {r.status_code for r in responses} == {202}

    service = replicas[0]
    crm = await drain_queue(sqs_endpoint, service.queues["crm"].url, expect=20)
    assert sorted(e["email"] for e in crm) == sorted(f"p{i}@example.com" for i in range(20))
    assert len({e["event_id"] for e in crm}) == 20
