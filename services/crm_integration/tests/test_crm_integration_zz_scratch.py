import asyncio, time, json, uuid
from datetime import UTC, datetime
import pytest
from alta_common.events import RegistrationEvent


def ev():
    u = uuid.uuid4()
    return RegistrationEvent(
        event_id=uuid.uuid4(),
        type="registration.created",
        occurred_at=datetime.now(UTC),
        user_id=u,
        email="a@b.c",
        name="n",
        status="pending",
        registered_at=datetime.now(UTC),
    )


@pytest.mark.parametrize("pollers,replicas,limit", [(2, 2, 40), (4, 2, 40), (2, 2, 90), (6, 2, 90)])
async def test_scratch(settings_factory, run_app, publish, crm_standin, pollers, replicas, limit):
    apps = [
        run_app(settings_factory(crm_rate_limit_per_second=limit, consumer_pollers=pollers))
        for _ in range(replicas)
    ]
    n = 3 * limit
    await publish(*[ev() for _ in range(n)])
    t = time.monotonic()
    while len(crm_standin.contacts()) < n and time.monotonic() - t < 60:
        await asyncio.sleep(0.2)
    times = sorted(r["received_at"] for r in crm_standin.contacts())
    st = crm_standin.stats()
    print(
        f"\nSCRATCH pollers={pollers} replicas={replicas} limit={limit}: {len(times)} in {times[-1] - times[0]:.2f}s = {(len(times) - 1) / (times[-1] - times[0]):.1f}/s max={st['max_in_any_second']} 429={st['rejected_429']}"
    )
