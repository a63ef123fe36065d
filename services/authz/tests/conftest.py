"""authz for real: its own server and database, with registration's credentials view in place."""

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

from alta_authz.app import create_app
from alta_authz.settings import Settings
from alta_common.passwords import PasswordHasher
from alta_devstack.ports import find_free_port
from alta_devstack.servers import ServerThread

PASSWORD = "a perfectly long password"
CONFIRMED = uuid.uuid4()
PENDING = uuid.uuid4()
ADMIN = uuid.uuid4()
OTHER = uuid.uuid4()


@dataclass
class Authz:
    url: str
    database_url: str

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            cursor = conn.execute(query.encode(), params)
            return cursor.fetchall() if cursor.description else []


@pytest.fixture
async def seeded_database(database_url: str) -> str:
    """The relation registration grants authz: confirmed, pending, admin and another account."""
    password_hash = await PasswordHasher().hash(PASSWORD)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE SCHEMA registration;"
            "CREATE TABLE registration.user_credentials"
            " (id uuid, email text, password_hash text, status text,"
            " password_changed_at timestamptz)"
        )
        for user_id, email, status in (
            (CONFIRMED, "ok@example.com", "confirmed"),
            (PENDING, "pending@example.com", "pending"),
            (ADMIN, "admin@example.com", "confirmed"),
            (OTHER, "other@example.com", "confirmed"),
        ):
            conn.execute(
                "INSERT INTO registration.user_credentials VALUES (%s, %s, %s, %s, NULL)",
                (user_id, email, password_hash, status),
            )
    return database_url


@pytest.fixture
def authz_factory(seeded_database: str) -> Iterator[Callable[..., Authz]]:
    servers: list[ServerThread] = []

    def start(**overrides: Any) -> Authz:
        settings = Settings(**{"app_env": "test", "database_url": seeded_database, **overrides})
        server = ServerThread(create_app(settings), find_free_port())
        server.start()
        servers.append(server)
        authz = Authz(server.url, seeded_database)
        authz.sql(
            "INSERT INTO authz.role_assignments VALUES (%s, 'admin') ON CONFLICT DO NOTHING",
            (ADMIN,),
        )
        return authz

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def authz(authz_factory: Callable[..., Authz]) -> Authz:
    return authz_factory()


@pytest.fixture
def authz_url(authz: Authz) -> str:
    return authz.url


@pytest.fixture
async def client(authz_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=authz_url, timeout=15) as http:
        yield http


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/login", json={"email": email, "password": password})
