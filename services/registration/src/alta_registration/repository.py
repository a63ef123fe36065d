"""All of registration's SQL."""

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.rows import class_row, dict_row
from psycopg.types.json import Jsonb

from alta_common.events import EventType, RegistrationEvent, crm_event_id


@dataclass(frozen=True)
class User:
    id: uuid.UUID
    email: str
    name: str
    status: Literal["pending", "confirmed"]
    registered_at: datetime
    confirmed_at: datetime | None


@dataclass(frozen=True)
class OutboxRow:
    id: int
    queue: str
    payload: str
    request_id: str | None


ConfirmOutcome = Literal["confirmed", "already_confirmed", "expired", "invalid"]
RegisterOutcome = Literal["created", "reissued", "notified", "throttled"]


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _event(
    user: User,
    type_: EventType,
    request_id: str | None,
    token: str | None = None,
    token_expires_at: datetime | None = None,
    event_id: uuid.UUID | None = None,
) -> RegistrationEvent:
    return RegistrationEvent(
        event_id=event_id or uuid.uuid4(),
        type=type_,
        occurred_at=datetime.now().astimezone(),
        user_id=user.id,
        email=user.email,
        name=user.name,
        status=user.status,
        registered_at=user.registered_at,
        request_id=request_id,
        confirmation_token=token,
        confirmation_expires_at=token_expires_at,
    )


def _crm_event(user: User, type_: EventType, request_id: str | None) -> RegistrationEvent:
    # A known id per user and type: crm_integration's reconciliation can re-enqueue the same
    # event, and the CRM's idempotency then sees one request, not two.
    return _event(user, type_, request_id, event_id=crm_event_id(user.id, type_))


async def _enqueue(
    conn: AsyncConnection[Any], queue: str, event: RegistrationEvent, request_id: str | None
) -> None:
    await conn.execute(
        "INSERT INTO registration.outbox (queue, event_id, payload, request_id)"
        " VALUES (%s, %s, %s, %s)",
        (queue, event.event_id, Jsonb(event.model_dump(mode="json")), request_id),
    )


async def register(
    conn: AsyncConnection[Any],
    *,
    email: str,
    name: str,
    password_hash: str,
    token: str,
    token_ttl: timedelta,
    notice_interval: timedelta,
    request_id: str | None,
) -> RegisterOutcome:
    """Store a sign-up and the events it causes, all in one transaction.

    A new address gets a pending user, a confirmation token and events for both queues. An
    address that already has an account is left as it is and its owner is emailed instead,
    at most once per `notice_interval`: a fresh confirmation link (carrying this sign-up's
    password) while still pending, an "already have an account" notice once confirmed.
    """
    async with conn.transaction():
        cursor = await conn.cursor(row_factory=class_row(User)).execute(
            "INSERT INTO registration.users"
            " (id, email, name, password_hash, status, last_notice_at)"
            " VALUES (%s, %s, %s, %s, 'pending', now()) ON CONFLICT (email) DO NOTHING"
            " RETURNING id, email, name, status, registered_at, confirmed_at",
            (uuid.uuid4(), email, name, password_hash),
        )
        created = await cursor.fetchone()
        if created is not None:
            expires_at = await _insert_token(conn, created.id, token, token_ttl, None)
            created_event = _event(created, "registration.created", request_id, token, expires_at)
            await _enqueue(conn, "email", created_event, request_id)
            await _enqueue(
                conn, "crm", _crm_event(created, "registration.created", request_id), request_id
            )
            return "created"

        existing = await _claim_notice(conn, email, notice_interval)
        if existing is None:
            return "throttled"
        if existing.status == "pending":
            # The newest link replaces the older ones.
            await conn.execute(
                "DELETE FROM registration.confirmation_tokens"
                " WHERE user_id = %s AND used_at IS NULL",
                (existing.id,),
            )
            expires_at = await _insert_token(conn, existing.id, token, token_ttl, password_hash)
            reissued = _event(
                existing, "registration.confirmation_reissued", request_id, token, expires_at
            )
            await _enqueue(conn, "email", reissued, request_id)
            return "reissued"
        duplicate = _event(existing, "registration.duplicate_attempt", request_id)
        await _enqueue(conn, "email", duplicate, request_id)
        return "notified"


async def _insert_token(
    conn: AsyncConnection[Any],
    user_id: uuid.UUID,
    token: str,
    ttl: timedelta,
    password_hash: str | None,
) -> datetime:
    cursor = await conn.execute(
        "INSERT INTO registration.confirmation_tokens"
        " (token_hash, user_id, expires_at, password_hash)"
        " VALUES (%s, %s, now() + %s, %s) RETURNING expires_at",
        (token_hash(token), user_id, ttl, password_hash),
    )
    row = await cursor.fetchone()
    assert row is not None
    expires_at: datetime = row[0]
    return expires_at


async def _claim_notice(conn: AsyncConnection[Any], email: str, interval: timedelta) -> User | None:
    """The account, if its owner may be emailed now (and record that they were)."""
    cursor = await conn.cursor(row_factory=class_row(User)).execute(
        "UPDATE registration.users SET last_notice_at = now()"
        " WHERE email = %s AND (last_notice_at IS NULL OR last_notice_at <= now() - %s)"
        " RETURNING id, email, name, status, registered_at, confirmed_at",
        (email, interval),
    )
    return await cursor.fetchone()


async def user_by_id(conn: AsyncConnection[Any], user_id: uuid.UUID) -> User | None:
    cursor = await conn.cursor(row_factory=class_row(User)).execute(
        "SELECT id, email, name, status, registered_at, confirmed_at"
        " FROM registration.users WHERE id = %s",
        (user_id,),
    )
    return await cursor.fetchone()


async def confirm(conn: AsyncConnection[Any], token: str, request_id: str | None) -> ConfirmOutcome:
    """Use a confirmation token once; confirming also queues the CRM status update."""
    async with conn.transaction():
        cursor = await conn.cursor(row_factory=dict_row).execute(
            "SELECT t.user_id, t.used_at, t.expires_at < now() AS expired, u.status,"
            " t.password_hash"
            " FROM registration.confirmation_tokens t"
            " JOIN registration.users u ON u.id = t.user_id"
            " WHERE t.token_hash = %s FOR UPDATE",
            (token_hash(token),),
        )
        row = await cursor.fetchone()
        if row is None:
            return "invalid"
        if row["used_at"] is not None or row["status"] == "confirmed":
            return "already_confirmed"
        if row["expired"]:
            return "expired"
        await conn.execute(
            "UPDATE registration.confirmation_tokens SET used_at = now() WHERE token_hash = %s",
            (token_hash(token),),
        )
        updated = await conn.cursor(row_factory=class_row(User)).execute(
            "UPDATE registration.users SET status = 'confirmed', confirmed_at = now(),"
            " password_hash = coalesce(%s, password_hash)"
            " WHERE id = %s RETURNING id, email, name, status, registered_at, confirmed_at",
            (row["password_hash"], row["user_id"]),
        )
        user = await updated.fetchone()
        assert user is not None
        await _enqueue(
            conn, "crm", _crm_event(user, "registration.confirmed", request_id), request_id
        )
        return "confirmed"


async def claim_outbox_batch(conn: AsyncConnection[Any], limit: int) -> list[OutboxRow]:
    """Lock the oldest unpublished rows; SKIP LOCKED lets every replica relay side by side."""
    cursor = await conn.cursor(row_factory=class_row(OutboxRow)).execute(
        "SELECT id, queue, payload::text AS payload, request_id FROM registration.outbox"
        " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
        (limit,),
    )
    return await cursor.fetchall()


async def delete_published(conn: AsyncConnection[Any], ids: list[int]) -> None:
    await conn.execute("DELETE FROM registration.outbox WHERE id = ANY(%s)", (ids,))


async def outbox_lag_seconds(conn: AsyncConnection[Any]) -> float:
    """Age of the oldest unpublished outbox row; 0 when the outbox is empty."""
    cursor = await conn.execute(
        "SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8"
        " FROM registration.outbox"
    )
    row = await cursor.fetchone()
    assert row is not None
    return float(row[0])
