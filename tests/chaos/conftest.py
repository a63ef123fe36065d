"""Fixtures of the fault-injection suite, and its summary: one line of counts per scenario.

Most scenarios share one running system (`chaos`): starting the services costs far more than
a scenario on a small machine. It has servers of its own (PostgreSQL, SQS, SMTP, CRM) so that
scenarios can stop and start them without disturbing other tests.
"""

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
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
# crm_integration's configured rate as a share of the CRM's limit, as in production (90 of 100).
CRM_RATE_SHARE_OF_LIMIT = 0.9


def pytest_configure(config: pytest.Config) -> None:
    config.stash[SUMMARY] = []


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    lines = config.stash.get(SUMMARY, [])
    if lines:
        terminalreporter.section("fault-injection scenarios: invariants")
        for counts in lines:
            terminalreporter.write_line(counts.line())


def _queues(endpoint: str, crm_visibility: int = CRM_VISIBILITY_SECONDS) -> dict[str, QueueUrls]:
    prefix = f"c{uuid.uuid4().hex[:10]}"
    queues = {}
    for name, visibility in (("email", EMAIL_VISIBILITY_SECONDS), ("crm", crm_visibility)):
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


@contextmanager
def _crm_standin_process(log_path: Path, limit_per_second: int) -> Iterator[CrmStandin]:
    """The CRM stand-in in a process of its own: its clock readings (when each request
    arrived) are then not held up by the SQS and SMTP servers in the test process."""
    port = find_free_port()
    env = {
        **os.environ,
        "CRM_API_TOKEN": CRM_TEST_TOKEN,
        "DEVSTACK_CRM_PORT": str(port),
        "DEVSTACK_CRM_LIMIT_PER_SECOND": str(limit_per_second),
    }
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "alta_devstack.crm_standin"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    crm = CrmStandin(f"http://127.0.0.1:{port}", CRM_TEST_TOKEN)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                crm.stats()
                break
            except httpx.TransportError:
                assert process.poll() is None, "the CRM stand-in exited"
                assert time.monotonic() < deadline, "the CRM stand-in did not start"
                time.sleep(0.2)
        yield crm
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def chaos_factory(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    database_url_factory: Callable[[], str],
    sqs_endpoint: str,
    smtp_sink: SmtpSink,
) -> Iterator[Callable[..., Chaos]]:
    """A system of its own, for a scenario that needs other settings: `crm_limit` (the CRM
    stand-in's limit, the one never to exceed), `crm_rate` (the services' configured rate,
    below it with margin as in production: 90/s for the CRM's 100/s), `env` for every
    service, and `crm_env` for crm_integration (with `crm_visibility`, its queue's
    visibility timeout)."""
    stacks: list[Stack] = []
    with ExitStack() as standins:

        def build(
            *,
            services: tuple[str, ...] = CONSUMERS,
            crm_limit: int = 100,
            crm_rate: float | None = None,
            env: dict[str, str] | None = None,
            crm_env: dict[str, str] | None = None,
            crm_visibility: int = CRM_VISIBILITY_SECONDS,
        ) -> Chaos:
            queues = _queues(sqs_endpoint, crm_visibility)
            log_path = tmp_path / f"crm-standin-{len(stacks)}.log"
            crm = standins.enter_context(_crm_standin_process(log_path, crm_limit))
            stack = _stack(
                tmp_path / f"logs-{len(stacks)}",
                database_url=database_url_factory(),
                endpoint=sqs_endpoint,
                queues=queues,
                smtp=smtp_sink,
                crm=crm,
                crm_rate=CRM_RATE_SHARE_OF_LIMIT * crm_limit if crm_rate is None else crm_rate,
            )
            stack.env |= env or {}
            stack.service_env["crm_integration"] |= {
                "SQS_VISIBILITY_TIMEOUT_SECONDS": str(crm_visibility),
                **(crm_env or {}),
            }
            stacks.append(stack)  # first, so that the teardown stops whatever did start
            stack.start(*services)
            chaos = Chaos(stack, smtp_sink, crm, queues, crm_limit)
            chaos.begin(request.node.name.removeprefix("test_"))
            return chaos

        yield build
        for stack in stacks:
            stack.stop(timeout=GRACE_SECONDS + 10)


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
