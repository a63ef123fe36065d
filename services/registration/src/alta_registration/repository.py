"""All of registration's SQL."""

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.rows import class_row, dict_row
from psycopg.types.json import Jsonb

from alta_common.events import EventType, RegistrationEvent


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


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _event(
    user: User, type_: EventType, request_id: str | None, token: str | None = None
) -> RegistrationEvent:
    return RegistrationEvent(
        event_id=uuid.uuid4(),
        type=type_,
        occurred_at=datetime.now().astimezone(),
        user_id=user.id,
        email=user.email,
        name=user.name,
        status=user.status,
        registered_at=user.registered_at,
        request_id=request_id,
        confirmation_token=token,
    )


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
    request_id: str | None,
) -> bool:
    """Store a pending user, its confirmation token and the outbox events in one transaction.

    When the address already has an account nothing about it changes; the owner is told by
    email instead. Returns whether a new account was created.
    """
    async with conn.transaction():
        cursor = await conn.cursor(row_factory=class_row(User)).execute(
            "INSERT INTO registration.users (id, email, name, password_hash, status)"
            " VALUES (%s, %s, %s, %s, 'pending') ON CONFLICT (email) DO NOTHING"
            " RETURNING id, email, name, status, registered_at, confirmed_at",
            (uuid.uuid4(), email, name, password_hash),
        )
        created = await cursor.fetchone()
        if created is None:
            existing = await _user_by_email(conn, email)
            await _enqueue(
                conn,
                "email",
                _event(existing, "registration.duplicate_attempt", request_id),
                request_id,
            )
            return False
        await conn.execute(
            "INSERT INTO registration.confirmation_tokens (token_hash, user_id, expires_at)"
            " VALUES (%s, %s, now() + %s)",
            (token_hash(token), created.id, token_ttl),
        )
        await _enqueue(
            conn, "email", _event(created, "registration.created", request_id, token), request_id
        )
        await _enqueue(conn, "crm", _event(created, "registration.created", request_id), request_id)
        return True


async def _user_by_email(conn: AsyncConnection[Any], email: str) -> User:
    cursor = await conn.cursor(row_factory=class_row(User)).execute(
        "SELECT id, email, name, status, registered_at, confirmed_at"
        " FROM registration.users WHERE email = %s",
        (email,),
    )
    user = await cursor.fetchone()
    assert user is not None, "the conflicting row exists: users are never deleted"
    return user


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
            "SELECT t.user_id, t.used_at, t.expires_at < now() AS expired, u.status"
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
            "UPDATE registration.users SET status = 'confirmed', confirmed_at = now()"
            " WHERE id = %s RETURNING id, email, name, status, registered_at, confirmed_at",
            (row["user_id"],),
        )
        user = await updated.fetchone()
        assert user is not None
        await _enqueue(conn, "crm", _event(user, "registration.confirmed", request_id), request_id)
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
    """Age of the oldest unpublished row (0 when the outbox is empty)."""
    cursor = await conn.execute(
        "SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM registration.outbox"
    )
    row = await cursor.fetchone()
    return float(row[0]) if row else 0.0
