"""Admission to the CRM: a request rate shared by every replica (send slots reserved in
PostgreSQL) and a cap on the requests one replica has open at once."""

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg_pool import AsyncConnectionPool

from alta_crm_integration.repository import Slot, reserve_slot

# How long an answer's bounds on the database's clock offset are trusted: long enough to keep
# a quick answer among slow ones, short enough for the clocks' drift to stay negligible.
CLOCK_SAMPLE_SECONDS = 10.0


class RateLimiterSaturated(Exception):
    """No in-flight permit or send slot came free within the time the caller may wait."""


@dataclass(frozen=True)
class Admission:
    # When the request may go, on the database's clock.
    slot_at: datetime
    waited_seconds: float
    # Slots this admission gave up because it woke too late to send on them.
    late_slots: int


class SharedRateLimiter:
    """Evenly spaced send slots (GCRA without burst) kept in one database row.

    Each admission reserves the next slot with one UPDATE on the database's clock, then sleeps
    until it. Replicas thus share one budget whatever their own clocks say, and a database that
    cannot be reached makes `admit` raise: nothing is ever sent unlimited.
    """

    def __init__(
        self,
        pool: AsyncConnectionPool,
        *,
        name: str,
        rate_per_second: float,
        jitter_allowance_seconds: float,
        max_in_flight: int,
    ) -> None:
        self._pool = pool
        self._name = name
        self._jitter_allowance_seconds = jitter_allowance_seconds
        self._in_flight = asyncio.Semaphore(max_in_flight)
        # (answered at, lowest and highest possible offset of the database's clock from ours)
        self._clock_samples: deque[tuple[float, float, float]] = deque()
        # Rounded up to the database's microseconds: rounding down would fit rate + 1 slots
        # into some second.
        spacing = (1.0 + jitter_allowance_seconds) / rate_per_second
        self.interval = timedelta(microseconds=math.ceil(spacing * 1_000_000))

    @asynccontextmanager
    async def admit(self, *, max_wait_seconds: float) -> AsyncIterator[Admission]:
        """Waits for an in-flight permit, held until the block (the request) ends, then a slot.

        Raises `RateLimiterSaturated` if the permit and a slot cannot both be had within
        `max_wait_seconds`.
        """
        started = time.monotonic()
        deadline = started + max(0.0, max_wait_seconds)
        # The permit comes first: a request waiting for one after its slot would send late.
        try:
            async with asyncio.timeout(deadline - time.monotonic()):
                await self._in_flight.acquire()
        except TimeoutError:
            raise RateLimiterSaturated(
                f"no in-flight permit for {self._name} within {max_wait_seconds:.2f} s"
            ) from None
        try:
            yield await self._wait_for_slot(started, deadline)
        finally:
            self._in_flight.release()

    async def _wait_for_slot(self, started: float, deadline: float) -> Admission:
        late_slots = 0
        while True:
            slot = await reserve_slot(
                self._pool,
                name=self._name,
                interval=self.interval,
                max_ahead=timedelta(seconds=max(0.0, deadline - time.monotonic())),
            )
            if slot is None:
                raise RateLimiterSaturated(
                    f"no {self._name} slot within {deadline - started:.2f} s"
                )
            earliest_due, latest_due = self._local_times_of(slot)
            delay = latest_due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            # Woken late (CPU throttling, a GC pause, a stalled event loop), this request would
            # reach the CRM with those of later slots; a stall wakes every sleeper of the
            # replica at once, and that burst could exceed the rate. The spacing absorbs
            # lateness up to the allowance; a slot missed by more is left unused.
            if time.monotonic() - earliest_due <= self._jitter_allowance_seconds:
                return Admission(
                    slot_at=slot.at,
                    waited_seconds=time.monotonic() - started,
                    late_slots=late_slots,
                )
            late_slots += 1

    def _local_times_of(self, slot: Slot) -> tuple[float, float]:
        """The earliest and latest local (monotonic) time the slot can be at.

        The database read its clock between the query leaving and the answer arriving, which
        bounds the offset between its clock and ours. The answers of the last few seconds
        together bound it tightest (NTP's reasoning), so an answer held up on its way (a
        stalled event loop) shortens the sleep instead of sending late unnoticed.
        """
        answered_at = time.monotonic()
        database_now = slot.database_now.timestamp()
        sample = (answered_at, database_now - answered_at, database_now - slot.asked_at)
        samples = self._clock_samples
        samples.append(sample)
        while samples[0][0] < answered_at - CLOCK_SAMPLE_SECONDS:
            samples.popleft()
        offset_at_least = max(lowest for _, lowest, _ in samples)
        offset_at_most = min(highest for _, _, highest in samples)
        if offset_at_least > offset_at_most:
            # A clock was set meanwhile: the older answers no longer hold.
            samples.clear()
            samples.append(sample)
            _, offset_at_least, offset_at_most = sample
        slot_at = slot.at.timestamp()
        return slot_at - offset_at_most, slot_at - offset_at_least
