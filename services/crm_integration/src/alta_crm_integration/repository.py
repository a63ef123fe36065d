"""Every SQL statement of crm_integration: delivery claims and rate-limit slots.

Each call runs in its own short transaction, committed before the CRM is called, so a claim or
a slot is visible to every replica at once and no transaction stays open during a request.
"""

import enum
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from psycopg_pool import AsyncConnectionPool


class ClaimState(enum.Enum):
    CLAIMED = "claimed"
    SYNCED = "synced"
    BUSY = "busy"


@dataclass(frozen=True)
class Claim:
    state: ClaimState
    # For BUSY: how long the other holder's lease still runs.
    lease_remaining_seconds: float = 0.0


@dataclass(frozen=True)
class Slot:
    at: datetime
    database_now: datetime
    # time.monotonic() just before the query went out: the database read its clock after it.
    asked_at: float


_CLAIM = """
INSERT INTO crm_integration.deliveries AS d
    (event_id, user_id, type, status, lease_owner, lease_until)
VALUES
    (%(event_id)s, %(user_id)s, %(type)s, 'sending', %(owner)s, clock_timestamp() + %(lease)s)
ON CONFLICT (event_id) DO UPDATE
    SET lease_owner = excluded.lease_owner, lease_until = excluded.lease_until
    WHERE d.status = 'sending' AND d.lease_until <= clock_timestamp()
RETURNING d.event_id
"""

_CLAIM_HOLDER = """
SELECT status, greatest(extract(epoch FROM lease_until - clock_timestamp()), 0)
FROM crm_integration.deliveries
WHERE event_id = %(event_id)s
"""

_MARK_SYNCED = """
UPDATE crm_integration.deliveries
SET status = 'synced', lease_owner = NULL, lease_until = NULL,
    attempts = attempts + %(attempts)s, crm_status = %(crm_status)s,
    synced_at = clock_timestamp()
WHERE event_id = %(event_id)s
"""

_RELEASE = """
UPDATE crm_integration.deliveries
SET lease_owner = NULL, lease_until = clock_timestamp(),
    attempts = attempts + %(attempts)s, crm_status = coalesce(%(crm_status)s, crm_status)
WHERE event_id = %(event_id)s AND lease_owner = %(owner)s AND status = 'sending'
"""

# One statement: the row lock makes concurrent reservations from every replica queue up, and
# each takes the slot after the previous one. A slot further away than `max_ahead` is not
# taken (no row comes back), so a crowded limiter never hands out waits nobody will honour.
_RESERVE_SLOT = """
INSERT INTO crm_integration.rate_limits AS r (name, next_slot_at)
VALUES (%(name)s, clock_timestamp() + %(interval)s)
ON CONFLICT (name) DO UPDATE
    SET next_slot_at = greatest(r.next_slot_at, clock_timestamp()) + %(interval)s
    WHERE r.next_slot_at <= clock_timestamp() + %(max_ahead)s
RETURNING r.next_slot_at - %(interval)s, clock_timestamp()
"""


class DeliveryRepository:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def claim(
        self,
        *,
        event_id: UUID,
        user_id: UUID,
        event_type: str,
        owner: UUID,
        lease_seconds: float,
    ) -> Claim:
        """Take the lease on an event unless it is synced or another live lease holds it."""
        params = {
            "event_id": event_id,
            "user_id": user_id,
            "type": event_type,
            "owner": owner,
            "lease": timedelta(seconds=lease_seconds),
        }
        async with self._pool.connection() as conn:
            cursor = await conn.execute(_CLAIM, params)
            if await cursor.fetchone() is not None:
                return Claim(ClaimState.CLAIMED)
            cursor = await conn.execute(_CLAIM_HOLDER, params)
            row = await cursor.fetchone()
        assert row is not None, "the claim conflicted, so the row exists"
        status, remaining = row
        if status == "synced":
            return Claim(ClaimState.SYNCED)
        return Claim(ClaimState.BUSY, lease_remaining_seconds=float(remaining))

    async def mark_synced(self, *, event_id: UUID, attempts: int, crm_status: int) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                _MARK_SYNCED,
                {"event_id": event_id, "attempts": attempts, "crm_status": crm_status},
            )

    async def release(
        self, *, event_id: UUID, owner: UUID, attempts: int, crm_status: int | None
    ) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                _RELEASE,
                {
                    "event_id": event_id,
                    "owner": owner,
                    "attempts": attempts,
                    "crm_status": crm_status,
                },
            )


async def reserve_slot(
    pool: AsyncConnectionPool, *, name: str, interval: timedelta, max_ahead: timedelta
) -> Slot | None:
    """The next send slot of limiter `name`, or None if it is more than `max_ahead` away."""
    async with pool.connection() as conn:
        asked_at = time.monotonic()
        cursor = await conn.execute(
            _RESERVE_SLOT, {"name": name, "interval": interval, "max_ahead": max_ahead}
        )
        row = await cursor.fetchone()
    return None if row is None else Slot(at=row[0], database_now=row[1], asked_at=asked_at)


@dataclass(frozen=True)
class UnsyncedContact:
    user_id: UUID
    email: str
    name: str
    status: str
    registered_at: datetime
    create_missing: bool
    confirm_missing: bool


# Through registration's read-only view `registration.crm_contacts` (its migration 0004).
_UNSYNCED_CONTACTS = """
SELECT c.id, c.email, c.name, c.status, c.registered_at, created.missing, confirmed.missing
FROM registration.crm_contacts c
CROSS JOIN LATERAL (SELECT NOT EXISTS (
    SELECT FROM crm_integration.deliveries d
    WHERE d.user_id = c.id AND d.type = 'registration.created' AND d.status = 'synced'
) AS missing) created
CROSS JOIN LATERAL (SELECT c.status = 'confirmed' AND NOT EXISTS (
    SELECT FROM crm_integration.deliveries d
    WHERE d.user_id = c.id AND d.type = 'registration.confirmed' AND d.status = 'synced'
) AS missing) confirmed
WHERE c.registered_at < clock_timestamp() - %(settle)s AND (created.missing OR confirmed.missing)
ORDER BY c.registered_at
"""


async def unsynced_contacts(
    pool: AsyncConnectionPool, *, settle: timedelta
) -> list[UnsyncedContact]:
    """Registrations older than `settle` whose create, or confirmation, the CRM never got."""
    async with pool.connection() as conn:
        cursor = await conn.execute(_UNSYNCED_CONTACTS, {"settle": settle})
        rows = await cursor.fetchall()
    return [UnsyncedContact(*row) for row in rows]
