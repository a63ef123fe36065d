"""A request rate shared by every replica: send slots reserved in PostgreSQL."""

import asyncio
import math
import time
from dataclasses import dataclass
from datetime import timedelta

from psycopg_pool import AsyncConnectionPool

from alta_crm_integration.repository import reserve_slot


class RateLimiterSaturated(Exception):
    """The next free slot is further away than the caller may wait."""


@dataclass(frozen=True)
class Admission:
    waited_seconds: float


class SharedRateLimiter:
    """Evenly spaced send slots (GCRA without burst) kept in one database row.

    Each `acquire` reserves the next slot with one UPDATE on the database's clock, then sleeps
    until it. Replicas thus share one budget whatever their own clocks say, and a database that
    cannot be reached makes `acquire` raise: nothing is ever sent unlimited.
    """

    def __init__(
        self,
        pool: AsyncConnectionPool,
        *,
        name: str,
        rate_per_second: float,
        jitter_allowance_seconds: float = 0.0,
    ) -> None:
        self._pool = pool
        self._name = name
        # Rounded up to the database's microseconds: rounding down would fit rate + 1 slots
        # into some second.
        spacing = (1.0 + jitter_allowance_seconds) / rate_per_second
        self.interval = timedelta(microseconds=math.ceil(spacing * 1_000_000))

    async def acquire(self, *, max_wait_seconds: float) -> Admission:
        """Wait for a slot of our own; raises `RateLimiterSaturated` if none is near enough."""
        started = time.monotonic()
        slot = await reserve_slot(
            self._pool,
            name=self._name,
            interval=self.interval,
            max_ahead=timedelta(seconds=max(0.0, max_wait_seconds)),
        )
        if slot is None:
            raise RateLimiterSaturated(f"no {self._name} slot within {max_wait_seconds:.2f} s")
        # The database read its clock before answering, so this wait can only err late.
        delay = (slot.at - slot.database_now).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)
        return Admission(waited_seconds=time.monotonic() - started)
