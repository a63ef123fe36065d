"""The CRM admission against a real PostgreSQL: replicas share one budget of send slots, a
stalled replica does not burst, and each replica caps its open requests.

Assertions are on the slots the database handed out, not on this busy machine's timing.
"""

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from psycopg import OperationalError
from psycopg_pool import AsyncConnectionPool
from pydantic import SecretStr

from alta_common.db import apply_migrations, open_pool
from alta_common.settings import DatabaseSettings
from alta_crm_integration import rate_limiter
from alta_crm_integration.rate_limiter import Admission, RateLimiterSaturated, SharedRateLimiter
from alta_crm_integration.repository import Slot, reserve_slot
from alta_devstack.ports import find_free_port

OpenReplica = Callable[[str], AbstractAsyncContextManager[AsyncConnectionPool]]


@pytest.fixture
async def open_replica(database_url: str) -> OpenReplica:
    """Opens the connection pool of one replica, in a migrated database."""
    await apply_migrations(
        database_url, schema="crm_integration", package="alta_crm_integration.migrations"
    )
    settings = DatabaseSettings(database_url=SecretStr(database_url))
    return lambda name: open_pool(settings, name=name)


def limiter(
    pool: AsyncConnectionPool,
    *,
    rate: float,
    jitter_allowance: float = 0.05,
    max_in_flight: int = 100,
) -> SharedRateLimiter:
    return SharedRateLimiter(
        pool,
        name="crm",
        rate_per_second=rate,
        jitter_allowance_seconds=jitter_allowance,
        max_in_flight=max_in_flight,
    )


async def send_through(limiter: SharedRateLimiter, max_wait_seconds: float = 10) -> Admission:
    async with limiter.admit(max_wait_seconds=max_wait_seconds) as admission:
        return admission


def most_in_one_second(times: list[datetime]) -> int:
    times = sorted(times)
    second = timedelta(seconds=1)
    return max(
        sum(1 for later in times[i:] if later - start < second) for i, start in enumerate(times)
    )


def gaps(times: list[datetime]) -> list[timedelta]:
    return [later - earlier for earlier, later in pairwise(sorted(times))]


async def next_slot_at(pool: AsyncConnectionPool) -> datetime:
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT next_slot_at FROM crm_integration.rate_limits")
        row = await cursor.fetchone()
    assert row is not None
    when: datetime = row[0]
    return when


async def test_two_replicas_never_exceed_the_rate_together(open_replica: OpenReplica) -> None:
    async with open_replica("replica-a") as a, open_replica("replica-b") as b:
        replicas = [limiter(pool, rate=20, jitter_allowance=0.1) for pool in (a, b)]
        admissions = await asyncio.gather(
            *(send_through(replica) for replica in replicas for _ in range(30))
        )

    # Nobody was refused, and no two requests shared a slot or came closer than the spacing.
    slots = [admission.slot_at for admission in admissions]
    assert len(set(slots)) == 60
    assert min(gaps(slots)) >= replicas[0].interval
    assert most_in_one_second(slots) <= 20


async def test_senders_of_a_stalled_replica_take_new_slots(open_replica: OpenReplica) -> None:
    async with open_replica("replica") as pool:
        replica = limiter(pool, rate=4, jitter_allowance=0.05)
        await send_through(replica)  # the slot now; the five below sleep until theirs, 0.26 s on
        first_free = await next_slot_at(pool)
        sleepers = [asyncio.create_task(send_through(replica)) for _ in range(5)]
        deadline = time.monotonic() + 5
        while await next_slot_at(pool) < first_free + 5 * replica.interval:
            assert time.monotonic() < deadline, "the sleepers never reserved their slots"
            await asyncio.sleep(0.005)

        # The event loop stalls past every reserved slot, then wakes all the sleepers at once.
        time.sleep(1.5)  # noqa: ASYNC251 (the stall is the point)
        resumed = datetime.now(UTC)
        admissions = await asyncio.gather(*sleepers)

    # None sent on its missed slot: each took a fresh one, spaced as if nothing happened.
    assert all(admission.late_slots >= 1 for admission in admissions)
    slots = [admission.slot_at for admission in admissions]
    assert min(slots) >= resumed
    assert min(gaps(slots)) >= replica.interval


async def test_an_answer_held_up_on_its_way_does_not_delay_the_send(
    open_replica: OpenReplica, monkeypatch: pytest.MonkeyPatch
) -> None:
    stalls = [1.5]

    async def answer_held_up(*args: Any, **kwargs: Any) -> Slot | None:
        slot = await reserve_slot(*args, **kwargs)
        if stalls:
            # The event loop stalls after the database read its clock, before the sender
            # sees the answer: most of the way to the slot, 2.1 s on, is gone by then.
            time.sleep(stalls.pop())  # noqa: ASYNC251 (the stall is the point)
        return slot

    async with open_replica("replica") as pool:
        replica = limiter(pool, rate=0.5, jitter_allowance=0.05)
        await send_through(replica)  # the slot now, and a quick answer to know the clocks by
        sent_first = time.monotonic()
        monkeypatch.setattr(rate_limiter, "reserve_slot", answer_held_up)
        admission = await send_through(replica)
        waited = time.monotonic() - sent_first

    # Sleeping the whole 2.1 s from the late answer would send 1.5 s after the slot, unnoticed
    # by a lateness check that starts from the answer. Knowing the clocks' offset from the
    # quick answer, the sender sleeps only what is left: never before its slot, and on it.
    interval = replica.interval.total_seconds()
    assert admission.late_slots == 0
    assert interval - 0.1 <= waited < interval + 1.0


async def test_a_slot_too_far_away_is_not_taken(open_replica: OpenReplica) -> None:
    async with open_replica("replica") as pool:
        # A wide allowance: the sleeps here must not count as late on a busy machine.
        replica = limiter(pool, rate=4, jitter_allowance=0.5)
        await send_through(replica)  # the slot now; the next is 0.375 s away
        second = await send_through(replica, max_wait_seconds=1)
        with pytest.raises(RateLimiterSaturated):
            await send_through(replica, max_wait_seconds=0.1)
        # Refusing did not use up a slot: the next caller willing to wait gets the next one.
        third = await send_through(replica, max_wait_seconds=1)

    assert third.slot_at - second.slot_at == replica.interval


async def test_a_replica_caps_its_open_requests(open_replica: OpenReplica) -> None:
    open_now = most_open = 0

    async def request(replica: SharedRateLimiter) -> None:
        nonlocal open_now, most_open
        async with replica.admit(max_wait_seconds=10):
            open_now += 1
            most_open = max(most_open, open_now)
            await asyncio.sleep(0.05)
            open_now -= 1

    async with open_replica("replica") as pool:
        replica = limiter(pool, rate=1000, max_in_flight=3)
        await asyncio.gather(*(request(replica) for _ in range(12)))

        # While every permit is held, a caller who may not wait long is refused.
        release = asyncio.Event()
        holding = 0

        async def hold() -> None:
            nonlocal holding
            async with replica.admit(max_wait_seconds=10):
                holding += 1
                await release.wait()

        holders = [asyncio.create_task(hold()) for _ in range(3)]
        deadline = time.monotonic() + 5
        while holding < 3:
            assert time.monotonic() < deadline, "the holders never got their permits"
            await asyncio.sleep(0.005)
        with pytest.raises(RateLimiterSaturated):
            await send_through(replica, max_wait_seconds=0.2)
        release.set()
        await asyncio.gather(*holders)
        await send_through(replica, max_wait_seconds=1)

    assert most_open == 3


async def test_an_unreachable_database_stops_sending() -> None:
    settings = DatabaseSettings(
        database_url=SecretStr(f"postgresql://postgres@127.0.0.1:{find_free_port()}/alta"),
        db_connect_timeout_seconds=0.5,
    )
    async with open_pool(settings, name="replica") as pool:
        with pytest.raises(OperationalError):
            await send_through(limiter(pool, rate=20), max_wait_seconds=1)
