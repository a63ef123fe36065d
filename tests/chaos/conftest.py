"""Fixtures of the fault-injection suite, and its summary: one line of counts per scenario.

Most scenarios share one running system (`chaos`): starting the services costs far more than
a scenario on a small machine. It has servers of its own (PostgreSQL, SQS, SMTP, CRM) so that
scenarios can stop and start them without disturbing other tests.
"""

import asyncio
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from alta_devstack.crm_standin import CrmStandin, create_app
from alta_devstack.ports import find_free_port
from alta_devstack.postgres import EmbeddedPostgres, create_database
from alta_devstack.pytest_plugin import CRM_TEST_TOKEN
from alta_devstack.servers import ServerThread
from alta_devstack.smtp_sink import SmtpSink
from alta_devstack.sqs import QueueUrls, SqsServer, create_queues

from ..stack import Stack, stack_environment
from .harness import (
    CRM_VISIBILITY_SECONDS,
    EMAIL_VISIBILITY_SECONDS,
    GRACE_SECONDS,
    MAX_RECEIVE_COUNT,
    SERVICE_ENV,
    Chaos,
    Counts,
    check_invariants,
)

SUMMARY = pytest.StashKey[list[Counts]]()
CONSUMERS = ("registration", "email_sender", "crm_integration")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[SUMMARY] = []


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    lines = config.stash.get(SUMMARY, [])
    if lines:
        terminalreporter.section("fault-injection scenarios: invariants")
        for counts in lines:
            terminalreporter.write_line(counts.line())


def _queues(endpoint: str) -> dict[str, QueueUrls]:
    prefix = f"c{uuid.uuid4().hex[:10]}"
    queues = {}
    for name, visibility in (("email", EMAIL_VISIBILITY_SECONDS), ("crm", CRM_VISIBILITY_SECONDS)):
        created = asyncio.run(
            create_queues(
                endpoint,
                [f"{prefix}-{name}"],
                max_receive_count=MAX_RECEIVE_COUNT,
                visibility_timeout=visibility,
            )
        )
        queues[name] = created[f"{prefix}-{name}"]
    return queues


def _stack(
    log_dir: Path,
    *,
    database_url: str,
    endpoint: str,
    queues: dict[str, QueueUrls],
    smtp: SmtpSink,
    crm: CrmStandin,
    crm_rate: float,
) -> Stack:
    log_dir.mkdir(parents=True, exist_ok=True)
    service_env = {service: dict(env) for service, env in SERVICE_ENV.items()}
    stack = Stack(env={}, log_dir=log_dir, service_env=service_env)
    stack.env = stack_environment(
        database_url=database_url,
        sqs_endpoint=endpoint,
        queues=queues,
        smtp_port=smtp.port,
        crm_url=crm.url,
        crm_token=crm.api_token,
        ports=stack.ports,
    )
    stack.env |= {
        "GRACEFUL_TIMEOUT_SECONDS": str(GRACE_SECONDS),
        "CRM_RATE_LIMIT_PER_SECOND": str(crm_rate),
    }
    return stack


@pytest.fixture(scope="session")
def chaos_postgres() -> Iterator[EmbeddedPostgres]:
    with (
        tempfile.TemporaryDirectory(prefix="alta-chaos-postgres-") as data_dir,
        EmbeddedPostgres(Path(data_dir), find_free_port()) as server,
    ):
        yield server


@pytest.fixture(scope="session")
def chaos_sqs(sqs_endpoint: str) -> Iterator[SqsServer]:
    # Its own endpoint, to switch off; `sqs_endpoint` is there for the AWS variables it sets.
    with SqsServer(port=find_free_port()) as server:
        yield server


@pytest.fixture(scope="session")
def chaos(
    tmp_path_factory: pytest.TempPathFactory,
    chaos_postgres: EmbeddedPostgres,
    chaos_sqs: SqsServer,
) -> Iterator[Chaos]:
    """The shared system: registration, email_sender and crm_integration, one of each."""
    smtp = SmtpSink(tmp_path_factory.mktemp("chaos-mail"), port=find_free_port())
    smtp.start()
    crm_server = ServerThread(create_app(api_token=CRM_TEST_TOKEN), find_free_port())
    crm_server.start()
    crm = CrmStandin(crm_server.url, CRM_TEST_TOKEN, crm_server)
    stack = _stack(
        tmp_path_factory.mktemp("chaos-logs"),
        database_url=create_database(chaos_postgres.url(), "alta_chaos"),
        endpoint=chaos_sqs.endpoint_url,
        queues=(queues := _queues(chaos_sqs.endpoint_url)),
        smtp=smtp,
        crm=crm,
        crm_rate=90.0,
    )
    try:
        stack.start(*CONSUMERS)
        yield Chaos(stack, smtp, crm, queues, 90.0, services=CONSUMERS)
    finally:
        stack.stop(timeout=GRACE_SECONDS + 10)
        crm_server.stop()
        smtp.stop()


@pytest.fixture
def scenario(chaos: Chaos, request: pytest.FixtureRequest) -> Chaos:
    """The shared system, ready for this test's scenario."""
    chaos.begin(request.node.name.removeprefix("test_"))
    return chaos


@pytest.fixture
def invariants(request: pytest.FixtureRequest) -> Callable[..., Counts]:
    """Wait for quiet, compute the invariants, add them to the summary, fail if one broke."""

    def check(chaos: Chaos, **options: Any) -> Counts:
        chaos.stack.wait_quiet(within=options.pop("within", 120))
        counts = check_invariants(chaos, request.node.name.removeprefix("test_"), **options)
        request.config.stash[SUMMARY].append(counts)
        assert not counts.problems, counts.line()
        return counts

    return check
