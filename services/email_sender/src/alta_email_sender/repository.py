"""The SQL of email_sender: delivery claims in email_sender.deliveries."""

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

from psycopg_pool import AsyncConnectionPool

from alta_email_sender.emails import EmailKind

ClaimStatus = Literal["claimed", "already_sent", "busy"]


@dataclass(frozen=True)
class Claim:
    status: ClaimStatus
    # For "busy": seconds until the other holder's lease ends.
    retry_in_seconds: float = 0.0


# The conflicting row stays locked even when the WHERE refuses the update, so the follow-up
# SELECT in the same transaction reads the state that made us lose.
_CLAIM = """
INSERT INTO email_sender.deliveries AS d
    (event_id, kind, recipient_hash, user_id, status, lease_until)
VALUES (%(event_id)s, %(kind)s, %(recipient_hash)s, %(user_id)s, 'sending',
        now() + make_interval(secs => %(lease_seconds)s))
ON CONFLICT (event_id) DO UPDATE
    SET lease_until = EXCLUDED.lease_until, attempts = d.attempts + 1
    WHERE d.status = 'sending' AND d.lease_until <= now()
RETURNING d.attempts
"""

_CURRENT = """
SELECT status, greatest(0, extract(epoch FROM lease_until - now()))::float8
FROM email_sender.deliveries WHERE event_id = %(event_id)s
"""

_RELEASE = """
UPDATE email_sender.deliveries SET lease_until = now()
WHERE event_id = %(event_id)s AND status = 'sending'
"""

_EXTEND = """
UPDATE email_sender.deliveries SET lease_until = now() + make_interval(secs => %(lease_seconds)s)
WHERE event_id = %(event_id)s AND status = 'sending'
"""

_MARK_SENT = """
UPDATE email_sender.deliveries SET status = 'sent', sent_at = now()
WHERE event_id = %(event_id)s
"""


_CONFIRMATIONS_SENT = """
SELECT user_id, max(sent_at) FROM email_sender.deliveries
WHERE user_id = ANY(%(user_ids)s) AND kind = 'confirmation' AND status = 'sent'
GROUP BY user_id
"""


class DeliveryRepository:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def claim(
        self,
        event_id: UUID,
        *,
        kind: EmailKind,
        recipient_hash: str,
        user_id: UUID,
        lease_seconds: float,
    ) -> Claim:
        """Take the right to send this event's email, committed before anything is sent."""
        params = {
            "event_id": event_id,
            "kind": kind,
            "recipient_hash": recipient_hash,
            "user_id": user_id,
            "lease_seconds": lease_seconds,
        }
        async with self._pool.connection() as conn, conn.transaction():
            cursor = await conn.execute(_CLAIM, params)
            if await cursor.fetchone() is not None:
                return Claim("claimed")
            cursor = await conn.execute(_CURRENT, params)
            row = await cursor.fetchone()
        assert row is not None, "a conflicting row exists and is locked"
        status, lease_left = row
        if status == "sent":
            return Claim("already_sent")
        return Claim("busy", retry_in_seconds=lease_left)

    async def release(self, event_id: UUID) -> None:
        """End our claim early, so the retry of a failed send is not blocked by it."""
        async with self._pool.connection() as conn:
            await conn.execute(_RELEASE, {"event_id": event_id})

    async def extend_claim(self, event_id: UUID, *, lease_seconds: float) -> None:
        """Push our claim's end `lease_seconds` from now (while the sent email is recorded)."""
        async with self._pool.connection() as conn:
            await conn.execute(_EXTEND, {"event_id": event_id, "lease_seconds": lease_seconds})

    async def mark_sent(self, event_id: UUID) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(_MARK_SENT, {"event_id": event_id})

    async def confirmation_sent_times(self, user_ids: list[UUID]) -> dict[UUID, datetime]:
        """When each account's latest confirmation email went out; accounts without one are left
        out."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(_CONFIRMATIONS_SENT, {"user_ids": user_ids})
            rows: list[tuple[UUID, datetime]] = await cursor.fetchall()
            return dict(rows)
