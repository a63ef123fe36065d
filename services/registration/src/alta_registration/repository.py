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
# "none" also covers addresses without an account: the caller answers the same either way.
EmailOutcome = Literal["sent", "throttled", "none"]
ResetOutcome = Literal["reset", "used", "expired", "invalid"]


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _event(
    user: User,
    type_: EventType,
    request_id: str | None,
    token: str | None = None,
    token_expires_at: datetime | None = None,
    *,
    reset_token: str | None = None,
    reset_expires_at: datetime | None = None,
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
        password_reset_token=reset_token,
        password_reset_expires_at=reset_expires_at,
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


async def resend_confirmation(
    conn: AsyncConnection[Any],
    *,
    email: str,
    token: str,
    token_ttl: timedelta,
    notice_interval: timedelta,
    request_id: str | None,
) -> EmailOutcome:
    """A fresh confirmation link for a pending account; older unused links stop working.

    Shares the notice throttle with repeated sign-ups, so alternating the two cannot flood a
    mailbox either.
    """
    async with conn.transaction():
        cursor = await conn.cursor(row_factory=class_row(User)).execute(
            "SELECT id, email, name, status, registered_at, confirmed_at"
            " FROM registration.users WHERE email = %s AND status = 'pending'",
            (email,),
        )
        if await cursor.fetchone() is None:
            return "none"
        user = await _claim_notice(conn, email, notice_interval)
        if user is None:
            return "throttled"
        await conn.execute(
            "DELETE FROM registration.confirmation_tokens WHERE user_id = %s AND used_at IS NULL",
            (user.id,),
        )
        expires_at = await _insert_token(conn, user.id, token, token_ttl, None)
        reissued = _event(user, "registration.confirmation_reissued", request_id, token, expires_at)
        await _enqueue(conn, "email", reissued, request_id)
        return "sent"


async def request_password_reset(
    conn: AsyncConnection[Any],
    *,
    email: str,
    token: str,
    token_ttl: timedelta,
    interval: timedelta,
    request_id: str | None,
) -> EmailOutcome:
    """Email a single-use reset link, at most once per `interval` per account.

    The new link replaces every unused older one.
    """
    async with conn.transaction():
        cursor = await conn.cursor(row_factory=class_row(User)).execute(
            "UPDATE registration.users SET last_reset_email_at = now()"
            " WHERE email = %s"
            " AND (last_reset_email_at IS NULL OR last_reset_email_at <= now() - %s)"
            " RETURNING id, email, name, status, registered_at, confirmed_at",
            (email, interval),
        )
        user = await cursor.fetchone()
        if user is None:
            exists = await conn.execute(
                "SELECT 1 FROM registration.users WHERE email = %s", (email,)
            )
            return "throttled" if await exists.fetchone() else "none"
        await conn.execute(
            "DELETE FROM registration.password_reset_tokens WHERE user_id = %s AND used_at IS NULL",
            (user.id,),
        )
        inserted = await conn.execute(
            "INSERT INTO registration.password_reset_tokens (token_hash, user_id, expires_at)"
            " VALUES (%s, %s, now() + %s) RETURNING expires_at",
            (token_hash(token), user.id, token_ttl),
        )
        row = await inserted.fetchone()
        assert row is not None
        requested = _event(
            user,
            "registration.password_reset_requested",
            request_id,
            reset_token=token,
            reset_expires_at=row[0],
        )
        await _enqueue(conn, "email", requested, request_id)
        return "sent"


async def reset_token_state(conn: AsyncConnection[Any], token: str) -> ResetOutcome | None:
    """Why a reset token cannot be used, or None while it can (checked again when used)."""
    cursor = await conn.execute(
        "SELECT used_at IS NOT NULL, expires_at < now()"
        " FROM registration.password_reset_tokens WHERE token_hash = %s",
        (token_hash(token),),
    )
    row = await cursor.fetchone()
    if row is None:
        return "invalid"
    used, expired = row
    if used:
        return "used"
    return "expired" if expired else None


async def reset_password(
    conn: AsyncConnection[Any], token: str, password_hash: str, request_id: str | None
) -> ResetOutcome:
    """Use a reset token once: new password, every session revoked (password_changed_at).

    Opening the emailed link proves the address too, so a pending account is confirmed.
    """
    async with conn.transaction():
        cursor = await conn.execute(
            "UPDATE registration.password_reset_tokens SET used_at = now()"
            " WHERE token_hash = %s AND used_at IS NULL AND expires_at >= now()"
            " RETURNING user_id",
            (token_hash(token),),
        )
        row = await cursor.fetchone()
        if row is None:
            return await reset_token_state(conn, token) or "invalid"
        user_id = row[0]
        await conn.execute(
            "DELETE FROM registration.password_reset_tokens WHERE user_id = %s AND used_at IS NULL",
            (user_id,),
        )
        was_pending = await conn.execute(
            "SELECT status = 'pending' FROM registration.users WHERE id = %s FOR UPDATE",
            (user_id,),
        )
        pending_row = await was_pending.fetchone()
        assert pending_row is not None
        updated = await conn.cursor(row_factory=class_row(User)).execute(
            "UPDATE registration.users SET password_hash = %s, password_changed_at = now(),"
            " status = 'confirmed', confirmed_at = coalesce(confirmed_at, now())"
            " WHERE id = %s RETURNING id, email, name, status, registered_at, confirmed_at",
            (password_hash, user_id),
        )
        user = await updated.fetchone()
        assert user is not None
        if pending_row[0]:
            await _enqueue(
                conn, "crm", _event(user, "registration.confirmed", request_id), request_id
            )
        await _enqueue(
            conn, "email", _event(user, "registration.password_changed", request_id), request_id
        )
        return "reset"


async def password_hash_of(conn: AsyncConnection[Any], user_id: uuid.UUID) -> str | None:
    cursor = await conn.execute(
        "SELECT password_hash FROM registration.users WHERE id = %s", (user_id,)
    )
    row = await cursor.fetchone()
    return None if row is None else str(row[0])


async def change_password(
    conn: AsyncConnection[Any],
    user_id: uuid.UUID,
    *,
    old_hash: str,
    new_hash: str,
    request_id: str | None,
) -> bool:
    """Replace the password if it is still `old_hash` (a concurrent change wins, not both)."""
    async with conn.transaction():
        cursor = await conn.cursor(row_factory=class_row(User)).execute(
            "UPDATE registration.users SET password_hash = %s, password_changed_at = now()"
            " WHERE id = %s AND password_hash = %s"
            " RETURNING id, email, name, status, registered_at, confirmed_at",
            (new_hash, user_id, old_hash),
        )
        user = await cursor.fetchone()
        if user is None:
            return False
        await _enqueue(
            conn, "email", _event(user, "registration.password_changed", request_id), request_id
        )
        return True


async def change_name(conn: AsyncConnection[Any], user_id: uuid.UUID, name: str) -> User | None:
    cursor = await conn.cursor(row_factory=class_row(User)).execute(
        "UPDATE registration.users SET name = %s WHERE id = %s"
        " RETURNING id, email, name, status, registered_at, confirmed_at",
        (name, user_id),
    )
    return await cursor.fetchone()


@dataclass(frozen=True)
class SignUpPage:
    users: list[User]
    total: int


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


_SEARCH = "WHERE %(search)s = '' OR email ILIKE %(pattern)s OR name ILIKE %(pattern)s"


async def list_sign_ups(
    conn: AsyncConnection[Any], *, search: str, limit: int, offset: int
) -> SignUpPage:
    """Sign-ups newest first, those whose address or name contains `search` (any case)."""
    params = {"search": search, "pattern": _like_pattern(search), "limit": limit, "offset": offset}
    cursor = await conn.cursor(row_factory=class_row(User)).execute(
        "SELECT id, email, name, status, registered_at, confirmed_at FROM registration.users"
        " WHERE %(search)s = '' OR email ILIKE %(pattern)s OR name ILIKE %(pattern)s"
        " ORDER BY registered_at DESC, id LIMIT %(limit)s OFFSET %(offset)s",
        params,
    )
    users = await cursor.fetchall()
    counted = await conn.execute(
        "SELECT count(*) FROM registration.users"
        " WHERE %(search)s = '' OR email ILIKE %(pattern)s OR name ILIKE %(pattern)s",
        params,
    )
    row = await counted.fetchone()
    assert row is not None
    return SignUpPage(users=users, total=int(row[0]))


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
