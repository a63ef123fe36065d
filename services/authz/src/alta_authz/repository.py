"""authz's SQL: its own tables (roles, sessions, login failures), and the read-only
credentials view registration grants."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.rows import class_row


@dataclass(frozen=True)
class Credentials:
    id: uuid.UUID
    password_hash: str
    status: str
    password_changed_at: datetime | None


_CREDENTIALS = (
    "SELECT id, password_hash, status, password_changed_at FROM registration.user_credentials"
)


async def credentials_by_email(conn: AsyncConnection[Any], email: str) -> Credentials | None:
    cursor = await conn.cursor(row_factory=class_row(Credentials)).execute(
        f"{_CREDENTIALS} WHERE email = %s", (email,)
    )
    return await cursor.fetchone()


async def credentials_by_id(conn: AsyncConnection[Any], user_id: uuid.UUID) -> Credentials | None:
    cursor = await conn.cursor(row_factory=class_row(Credentials)).execute(
        f"{_CREDENTIALS} WHERE id = %s", (user_id,)
    )
    return await cursor.fetchone()


async def roles_of(conn: AsyncConnection[Any], user_id: uuid.UUID) -> frozenset[str]:
    cursor = await conn.execute(
        "SELECT role FROM authz.role_assignments WHERE user_id = %s", (user_id,)
    )
    return frozenset({"user", *(row[0] for row in await cursor.fetchall())})


async def grant_role(conn: AsyncConnection[Any], user_id: uuid.UUID, role: str) -> bool:
    """Returns whether the role was new."""
    cursor = await conn.execute(
        "INSERT INTO authz.role_assignments (user_id, role) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (user_id, role),
    )
    return cursor.rowcount == 1


async def start_session(
    conn: AsyncConnection[Any],
    *,
    user_id: uuid.UUID,
    token_hash: bytes,
    token_ttl: timedelta,
    max_age: timedelta,
) -> uuid.UUID:
    family_id = uuid.uuid4()
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO authz.session_families (id, user_id, expires_at)"
            " VALUES (%s, %s, now() + %s)",
            (family_id, user_id, max_age),
        )
        await _add_token(conn, family_id, token_hash, token_ttl)
    return family_id


async def _add_token(
    conn: AsyncConnection[Any], family_id: uuid.UUID, token_hash: bytes, ttl: timedelta
) -> None:
    # A token never outlives its family.
    await conn.execute(
        "INSERT INTO authz.refresh_tokens (token_hash, family_id, expires_at)"
        " SELECT %s, id, least(now() + %s, expires_at) FROM authz.session_families WHERE id = %s",
        (token_hash, ttl, family_id),
    )


@dataclass(frozen=True)
class _PresentedToken:
    family_id: uuid.UUID
    user_id: uuid.UUID
    started_at: datetime
    family_revoked: bool
    expired: bool
    # Seconds since it was exchanged, or None while it is the live token.
    rotated_seconds_ago: float | None


@dataclass(frozen=True)
class Rotated:
    family_id: uuid.UUID
    user_id: uuid.UUID


RefreshRefusal = Literal["unknown", "revoked", "expired", "reused", "password_changed"]


async def rotate_refresh_token(
    conn: AsyncConnection[Any],
    *,
    token_hash: bytes,
    new_token_hash: bytes,
    token_ttl: timedelta,
    reuse_grace: timedelta,
) -> Rotated | RefreshRefusal:
    """Exchange a refresh token for `new_token_hash`, or refuse; reuse revokes the family.

    The rows are locked, so two refreshes with the same token are decided one after the other.
    """
    async with conn.transaction():
        cursor = await conn.cursor(row_factory=class_row(_PresentedToken)).execute(
            "SELECT t.family_id, f.user_id, f.started_at,"
            " f.revoked_at IS NOT NULL AS family_revoked,"
            " (t.expires_at <= now() OR f.expires_at <= now()) AS expired,"
            " extract(epoch FROM now() - t.rotated_at)::float8 AS rotated_seconds_ago"
            " FROM authz.refresh_tokens t JOIN authz.session_families f ON f.id = t.family_id"
            " WHERE t.token_hash = %s FOR UPDATE OF t, f",
            (token_hash,),
        )
        presented = await cursor.fetchone()
        if presented is None:
            return "unknown"
        if presented.family_revoked:
            return "revoked"
        if presented.expired:
            return "expired"
        rotated_ago = presented.rotated_seconds_ago
        if rotated_ago is not None and rotated_ago > reuse_grace.total_seconds():
            await _revoke_family(conn, presented.family_id, "reuse")
            return "reused"
        credentials = await credentials_by_id(conn, presented.user_id)
        if credentials is None or credentials.status != "confirmed":
            await _revoke_family(conn, presented.family_id, "account_gone")
            return "revoked"
        changed_at = credentials.password_changed_at
        if changed_at is not None and changed_at >= presented.started_at:
            await _revoke_family(conn, presented.family_id, "password_changed")
            return "password_changed"
        await conn.execute(
            "UPDATE authz.refresh_tokens SET rotated_at = now()"
            " WHERE token_hash = %s AND rotated_at IS NULL",
            (token_hash,),
        )
        await _add_token(conn, presented.family_id, new_token_hash, token_ttl)
    return Rotated(presented.family_id, presented.user_id)


async def _revoke_family(conn: AsyncConnection[Any], family_id: uuid.UUID, reason: str) -> None:
    await conn.execute(
        "UPDATE authz.session_families SET revoked_at = now(), revoked_reason = %s"
        " WHERE id = %s AND revoked_at IS NULL",
        (reason, family_id),
    )


async def revoke_session_of_token(conn: AsyncConnection[Any], token_hash: bytes) -> bool:
    """Logout: revoke the family the token belongs to (rotated or not). Returns whether found."""
    cursor = await conn.execute(
        "UPDATE authz.session_families SET revoked_at = now(), revoked_reason = 'logout'"
        " WHERE id = (SELECT family_id FROM authz.refresh_tokens WHERE token_hash = %s)"
        " AND revoked_at IS NULL",
        (token_hash,),
    )
    return cursor.rowcount == 1


async def revoke_all_sessions(conn: AsyncConnection[Any], user_id: uuid.UUID) -> int:
    cursor = await conn.execute(
        "UPDATE authz.session_families"
        " SET revoked_at = now(), revoked_reason = 'logout_everywhere'"
        " WHERE user_id = %s AND revoked_at IS NULL",
        (user_id,),
    )
    return cursor.rowcount


async def locked_for(conn: AsyncConnection[Any], keys: list[bytes]) -> float:
    """Seconds until every one of `keys` is unlocked (0 when none is locked)."""
    cursor = await conn.execute(
        "SELECT coalesce(max(extract(epoch FROM locked_until - now())), 0)::float8"
        " FROM authz.login_failures WHERE key = ANY(%s) AND locked_until > now()",
        (keys,),
    )
    row = await cursor.fetchone()
    assert row is not None
    return float(row[0])


async def record_failure(
    conn: AsyncConnection[Any],
    key: bytes,
    *,
    window: timedelta,
    threshold: int,
    lock_base: timedelta,
    lock_max: timedelta,
) -> None:
    """Count a failure; from the threshold on, each failure locks the key for a doubling time.

    Failures older than `window` are forgotten, so the count and the lock decay by themselves.
    """
    await conn.execute(
        "INSERT INTO authz.login_failures AS f (key, failures, last_failure_at)"
        " VALUES (%(key)s, 1, now())"
        " ON CONFLICT (key) DO UPDATE SET"
        "  failures = CASE WHEN f.last_failure_at < now() - %(window)s THEN 1"
        "   ELSE f.failures + 1 END,"
        "  last_failure_at = now()",
        {"key": key, "window": window},
    )
    await conn.execute(
        "UPDATE authz.login_failures SET locked_until = now() + least("
        "  %(base)s * power(2, least(failures - %(threshold)s, 30)), %(max)s)"
        " WHERE key = %(key)s AND failures >= %(threshold)s",
        {"key": key, "threshold": threshold, "base": lock_base, "max": lock_max},
    )


async def clear_failures(conn: AsyncConnection[Any], keys: list[bytes]) -> None:
    await conn.execute("DELETE FROM authz.login_failures WHERE key = ANY(%s)", (keys,))


async def forget_old_failures(conn: AsyncConnection[Any], window: timedelta) -> int:
    cursor = await conn.execute(
        "DELETE FROM authz.login_failures"
        " WHERE last_failure_at < now() - %s AND (locked_until IS NULL OR locked_until < now())",
        (window,),
    )
    return cursor.rowcount
