"""The shared rate limiter against a real PostgreSQL: replicas share one budget."""

import asyncio
import time

import pytest
from psycopg import OperationalError
from pydantic import SecretStr

from alta_common.db import apply_migrations, open_pool
from alta_common.settings import DatabaseSettings
from alta_crm_integration.rate_limiter import RateLimiterSaturated, SharedRateLimiter
from alta_devstack.ports import find_free_port


def most_in_one_second(times: list[float]) -> int:
    times = sorted(times)
    return max(
        sum(1 for later in times[i:] if later - start < 1.0) for i, start in enumerate(times)
    )


async def test_two_replicas_never_exceed_the_rate_together(database_url: str) -> None:
    await apply_migrations(
        database_url, schema="crm_integration", package="alta_crm_integration.migrations"
    )
    settings = DatabaseSettings(database_url=SecretStr(database_url))
    admitted: list[float] = []

    async def send_through(limiter: SharedRateLimiter) -> None:
        await limiter.acquire(max_wait_seconds=10)
        admitted.append(time.monotonic())

    # One pool and one limiter per replica. The allowance covers this busy shared machine
    # waking a sleeper late; slots are then 55 ms apart instead of 50.
    async with (
        open_pool(settings, name="replica-a") as a,
        open_pool(settings, name="replica-b") as b,
    ):
        replicas = [
            SharedRateLimiter(pool, name="crm", rate_per_second=20, jitter_allowance_seconds=0.1)
            for pool in (a, b)
        ]
        started = time.monotonic()
        await asyncio.gather(*(send_through(limiter) for limiter in replicas for _ in range(30)))

    assert len(admitted) == 60
    assert most_in_one_second(admitted) <= 20
    # Nobody was refused or stalled: the 60 went through one after another at the spacing.
    spacing = replicas[0].interval.total_seconds()
    assert 59 * spacing - 0.01 < max(admitted) - started < 59 * spacing + 2


async def test_a_slot_too_far_away_is_not_taken(database_url: str) -> None:
    await apply_migrations(
        database_url, schema="crm_integration", package="alta_crm_integration.migrations"
    )
    settings = DatabaseSettings(database_url=SecretStr(database_url))
    async with open_pool(settings, name="replica") as pool:
        limiter = SharedRateLimiter(pool, name="crm", rate_per_second=2)
        await limiter.acquire(max_wait_seconds=1)  # slot now; the next is 0.5 s away
        await limiter.acquire(max_wait_seconds=1)
        started = time.monotonic()
        with pytest.raises(RateLimiterSaturated):
            await limiter.acquire(max_wait_seconds=0.1)
        # Refusing did not use up the slot: the next caller willing to wait gets it.
        admission = await limiter.acquire(max_wait_seconds=1)

    assert time.monotonic() - started < 0.7
    assert admission.waited_seconds > 0.2


async def test_an_unreachable_database_stops_sending(database_url: str) -> None:
    settings = DatabaseSettings(
        database_url=SecretStr(f"postgresql://postgres@127.0.0.1:{find_free_port()}/alta"),
        db_connect_timeout_seconds=0.5,
    )
    async with open_pool(settings, name="replica") as pool:
        limiter = SharedRateLimiter(pool, name="crm", rate_per_second=20)
        with pytest.raises(OperationalError):
            await limiter.acquire(max_wait_seconds=1)
