"""Fixtures that start real local servers for integration tests: PostgreSQL, SQS, SMTP, CRM.

pytest loads this plugin for every run (`-p alta_devstack.pytest_plugin`), so each fixture
imports its server module itself: together they take seconds to import, and most runs need few.
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from alta_devstack.ports import find_free_port

if TYPE_CHECKING:
    from alta_devstack.crm_standin import CrmStandin
    from alta_devstack.smtp_sink import SmtpSink
    from alta_devstack.sqs import QueueUrls

CRM_TEST_TOKEN = "test-crm-token"  # noqa: S105 (a fixed token for a local stand-in)
DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _docker_is_reachable() -> bool:
    import docker
    from docker.errors import DockerException

    with warnings.catch_warnings():
        # docker-py leaks its socket when no engine answers (docker/docker-py#3356); collect it
        # here, where that is expected, rather than fail whichever test the GC next runs in.
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            client = docker.from_env(timeout=3)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except DockerException:
            return False
        finally:
            gc.collect()


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """URL of a superuser connection to a PostgreSQL 16 server for the whole session."""
    from alta_devstack.postgres import SERVER_SETTINGS

    mode = os.environ.get("ALTA_TEST_POSTGRES") or (
        "docker" if _docker_is_reachable() else "embedded"
    )
    if mode == "docker":
        from testcontainers.community.postgres import PostgresContainer

        settings = " ".join(f"-c {name}={value}" for name, value in SERVER_SETTINGS.items())
        container = PostgresContainer("postgres:16-alpine", driver=None)
        with container.with_command(f"postgres {settings}"):
            yield container.get_connection_url()
    elif mode == "embedded":
        from alta_devstack.postgres import EmbeddedPostgres

        # Not under pytest's basetemp: a later pytest run makes that folder root-only, which
        # would cut off a server running as another user (the case when tests run as root).
        data_dir = Path(tempfile.mkdtemp(prefix="alta-test-postgres-"))
        try:
            with EmbeddedPostgres(data_dir, find_free_port()) as server:
                yield server.url()
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
    else:
        raise pytest.UsageError(f"ALTA_TEST_POSTGRES must be embedded or docker, not {mode!r}")


@pytest.fixture
def database_url_factory(postgres_admin_url: str) -> Iterator[Callable[[], str]]:
    """Creates a fresh empty database per call; all are dropped when the test ends."""
    from alta_devstack.postgres import create_database, drop_databases

    created: list[str] = []

    def create() -> str:
        created.append(f"test_{uuid.uuid4().hex}")
        return create_database(postgres_admin_url, created[-1])

    yield create
    if created:
        drop_databases(postgres_admin_url, created)


@pytest.fixture
def database_url(database_url_factory: Callable[[], str]) -> str:
    return database_url_factory()


@pytest.fixture(scope="session")
def sqs_endpoint() -> Iterator[str]:
    """Endpoint URL of an SQS-compatible server for the whole session."""
    from alta_devstack.sqs import SqsServer

    with pytest.MonkeyPatch.context() as patch, SqsServer(port=find_free_port()) as server:
        # Clients need some credentials and a region; real ones, when set, are left alone.
        for name, value in DUMMY_AWS_ENV.items():
            if name not in os.environ:
                patch.setenv(name, value)
        yield server.endpoint_url


@pytest.fixture
async def sqs_queues(sqs_endpoint: str) -> dict[str, QueueUrls]:
    """Queues `email` and `crm` (each with a DLQ) under a prefix no other test uses."""
    from alta_devstack.sqs import VISIBILITY_TIMEOUTS, create_queues

    prefix = f"t{uuid.uuid4().hex[:12]}"
    # Fewer receives than the deployed queues allow, so dead-letter tests finish quickly.
    return {
        name: (
            await create_queues(
                sqs_endpoint, [f"{prefix}-{name}"], max_receive_count=5, visibility_timeout=seconds
            )
        )[f"{prefix}-{name}"]
        for name, seconds in VISIBILITY_TIMEOUTS.items()
    }


@pytest.fixture
def smtp_sink(tmp_path: Path) -> Iterator[SmtpSink]:
    from alta_devstack.smtp_sink import SmtpSink

    sink = SmtpSink(tmp_path / "mail", port=find_free_port())
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def crm_standin_factory() -> Iterator[Callable[..., CrmStandin]]:
    """Starts CRM stand-ins, e.g. `crm_standin_factory(limit_per_second=5)`; stopped at the end."""
    from alta_devstack.crm_standin import CrmStandin, create_app
    from alta_devstack.servers import ServerThread

    servers: list[ServerThread] = []

    def start(*, limit_per_second: int = 100) -> CrmStandin:
        app = create_app(api_token=CRM_TEST_TOKEN, limit_per_second=limit_per_second)
        servers.append(ServerThread(app, find_free_port()))
        servers[-1].start()
        return CrmStandin(servers[-1].url, CRM_TEST_TOKEN, servers[-1])

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def crm_standin(crm_standin_factory: Callable[..., CrmStandin]) -> CrmStandin:
    return crm_standin_factory()
