"""PostgreSQL faults: a server restart and a read-only server, with the service left running."""

import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

from alta_devstack.ports import find_free_port
from alta_devstack.postgres import EmbeddedPostgres, create_database

from .conftest import RegistrationService


def sign_up_body() -> dict[str, str]:
    return {
        "email": f"user-{uuid.uuid4().hex[:8]}@example.org",
        "name": "Ada Lovelace",
        "password": "correct horse battery",
    }


def user_emails(database_url: str) -> set[str]:
    with psycopg.connect(database_url) as conn:
        return {row[0] for row in conn.execute("SELECT email FROM registration.users")}


async def sign_up_until_accepted(http: httpx.AsyncClient, within: float) -> float:
    """Sign up (a new person each time) until one is accepted; returns the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        response = await http.post("/registrations", json=sign_up_body())
        if response.status_code == 202:
            return time.monotonic() - started
        assert response.status_code == 503, response.text
    pytest.fail(f"no sign-up accepted within {within} s")


@pytest.fixture
def own_postgres() -> Iterator[EmbeddedPostgres]:
    """A server of this test's own, so that stopping it disturbs no other test."""
    # Not under pytest's basetemp (see the devstack plugin's postgres_admin_url).
    data_dir = Path(tempfile.mkdtemp(prefix="alta-test-restart-"))
    try:
        with EmbeddedPostgres(data_dir, find_free_port()) as server:
            yield server
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


async def test_after_a_postgres_restart_sign_ups_work_again_without_restarting_the_service(
    own_postgres: EmbeddedPostgres,
    registration_factory: Callable[..., RegistrationService],
) -> None:
    database_url = create_database(own_postgres.url(), "alta")
    service = registration_factory(database_url=database_url, db_connect_timeout_seconds=1)
    async with httpx.AsyncClient(base_url=service.url, timeout=15) as http:
        assert (await http.post("/registrations", json=sign_up_body())).status_code == 202

        own_postgres.stop()
        during_outage = sign_up_body()
        response = await http.post("/registrations", json=during_outage)
        assert response.status_code == 503
        assert response.headers["retry-after"].isdigit()
        assert response.json()["error"]["code"] == "unavailable"

        own_postgres.start()
        # The pool's broken connections are replaced on use; a handful of seconds at most.
        await sign_up_until_accepted(http, within=20)

    emails = user_emails(database_url)
    assert during_outage["email"] not in emails
    assert len(emails) >= 2


async def test_a_read_only_server_is_a_503_and_its_connections_are_recycled(
    registration_factory: Callable[..., RegistrationService],
) -> None:
    service = registration_factory(db_connect_timeout_seconds=1)
    dbname = psycopg.conninfo.conninfo_to_dict(service.database_url)["dbname"]
    assert isinstance(dbname, str)

    def set_read_only(on: bool) -> None:
        with psycopg.connect(service.database_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = {}").format(
                    sql.Identifier(dbname), sql.SQL("on" if on else "off")
                )
            )
            # As in a failover, the sessions the service holds are on a read-only server now.
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'registration'"
            )

    async with httpx.AsyncClient(base_url=service.url, timeout=15) as http:
        assert (await http.post("/registrations", json=sign_up_body())).status_code == 202

        set_read_only(True)
        refused = sign_up_body()
        response = await http.post("/registrations", json=refused)
        assert response.status_code == 503
        assert "retry-after" in response.headers

        with psycopg.connect(service.database_url, autocommit=True) as conn:
            # This session, like every new one, starts read-only; it may turn that off.
            conn.execute("SET default_transaction_read_only = off")
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = off").format(
                    sql.Identifier(dbname)
                )
            )
        # No termination this time: the pool itself must drop its read-only connections.
        await sign_up_until_accepted(http, within=20)

    assert refused["email"] not in user_emails(service.database_url)
