"""PostgreSQL: the pooled connections every service uses, and per-schema SQL migrations."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from importlib.resources import files
from typing import Any

import psycopg
import structlog
from psycopg import sql
from psycopg_pool import AsyncConnectionPool
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from alta_common.settings import DatabaseSettings

log = structlog.get_logger("alta.db")

# One lock for every service's migrations: they share a server and may start together.
_MIGRATION_LOCK_KEY = 0x616C7461  # "alta"


@asynccontextmanager
async def open_pool(settings: DatabaseSettings, *, name: str) -> AsyncIterator[AsyncConnectionPool]:
    """A pool that starts even while the database is down; `/readyz` reports it until it answers.

    `check` tests each connection before lending it, so connections broken by a server restart,
    or left on a server that became read-only (a failed-over primary), are replaced instead of
    failing a request.
    """
    pool = AsyncConnectionPool(
        settings.database_url.get_secret_value(),
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
        kwargs={
            "connect_timeout": max(1, int(settings.db_connect_timeout_seconds)),
            "application_name": name,
        },
        check=check_writable_connection,
        timeout=settings.db_connect_timeout_seconds,
        name=name,
        open=False,
    )
    await pool.open(wait=False)
    try:
        yield pool
    finally:
        await pool.close()


class ReadOnlyServer(psycopg.OperationalError):
    """The connection's server accepts only reads (a standby, or a primary being demoted)."""


async def check_writable_connection(conn: psycopg.AsyncConnection[Any]) -> None:
    """The pool's health check: one round trip, like `AsyncConnectionPool.check_connection`,
    that also refuses a connection whose server no longer takes writes."""
    autocommit = conn.autocommit
    if not autocommit:
        await conn.set_autocommit(True)
    try:
        cursor = await conn.execute("SELECT current_setting('transaction_read_only')")
        row = await cursor.fetchone()
    finally:
        if not autocommit:
            # A broken connection fails here too; the first error is the one to report.
            with suppress(Exception):
                await conn.set_autocommit(False)
    if row is not None and row[0] == "on":
        # The pool puts back a connection that failed its check unless it is closed; closed,
        # it is discarded and a new one made (reaching the new primary after a failover).
        await conn.close()
        raise ReadOnlyServer("the database server is read-only")


async def check_database(pool: AsyncConnectionPool) -> None:
    async with pool.connection() as conn:
        await conn.execute("SELECT 1")


async def apply_migrations(
    conninfo: str, *, schema: str, package: str, wait_seconds: float = 60.0
) -> list[str]:
    """Apply the `NNNN_*.sql` files of `package` not yet recorded in `<schema>.schema_migrations`.

    Each file runs in its own transaction, under an advisory lock so that replicas starting
    together apply each file once. Waits for the server to come up (it may start after us).
    Returns the versions applied.
    """
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(psycopg.OperationalError),
        stop=stop_after_delay(wait_seconds),
        wait=wait_exponential(multiplier=0.2, max=2),
        reraise=True,
    ):
        with attempt:
            conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
    scripts = sorted(
        (f.name, f.read_text(encoding="utf-8"))
        for f in files(package).iterdir()
        if f.name.endswith(".sql")
    )
    applied: list[str] = []
    async with conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK_KEY,))
        try:
            await conn.execute(
                sql.SQL(
                    "CREATE SCHEMA IF NOT EXISTS {schema};"
                    "CREATE TABLE IF NOT EXISTS {schema}.schema_migrations"
                    " (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                ).format(schema=sql.Identifier(schema))
            )
            cursor = await conn.execute(
                sql.SQL("SELECT version FROM {}.schema_migrations").format(sql.Identifier(schema))
            )
            done = {row[0] for row in await cursor.fetchall()}
            for version, script in scripts:
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(script.encode())
                    await conn.execute(
                        sql.SQL("INSERT INTO {}.schema_migrations (version) VALUES (%s)").format(
                            sql.Identifier(schema)
                        ),
                        (version,),
                    )
                applied.append(version)
                log.info("migration applied", schema=schema, version=version)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK_KEY,))
    return applied
