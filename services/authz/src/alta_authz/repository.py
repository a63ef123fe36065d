"""authz's SQL: its own role table, and the read-only credentials view registration grants."""

import uuid
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row


@dataclass(frozen=True)
class Credentials:
    id: uuid.UUID
    password_hash: str
    status: str


async def credentials_by_email(conn: AsyncConnection[Any], email: str) -> Credentials | None:
    cursor = await conn.cursor(row_factory=class_row(Credentials)).execute(
        "SELECT id, password_hash, status FROM registration.user_credentials WHERE email = %s",
        (email,),
    )
    return await cursor.fetchone()


async def roles_of(conn: AsyncConnection[Any], user_id: uuid.UUID) -> frozenset[str]:
    cursor = await conn.execute(
        "SELECT role FROM authz.role_assignments WHERE user_id = %s", (user_id,)
    )
    return frozenset({"user", *(row[0] for row in await cursor.fetchall())})
