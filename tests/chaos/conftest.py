"""Fixtures of the fault-injection suite, and its summary: one line of counts per scenario."""

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from alta_devstack.crm_standin import CrmStandin
from alta_devstack.smtp_sink import SmtpSink
from alta_devstack.sqs import create_queues

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


@pytest.fixture
def chaos_factory(
    tmp_path: Path,
    database_url_factory: Callable[[], str],
    sqs_endpoint: str,
    smtp_sink: SmtpSink,
    crm_standin_factory: Callable[..., CrmStandin],
) -> Iterator[Callable[..., Chaos]]:
    """Starts the stack against fresh queues, a fresh database, the SMTP sink and a CRM
    stand-in. Options: `services`, `crm_rate` (the services' configured limit), `env`,
    `database_url` and `sqs_endpoint` (for scenarios that restart those servers)."""
    stacks: list[Stack] = []

    def build(
        *,
        services: tuple[str, ...] = CONSUMERS,
        crm_rate: float = 90.0,
        env: dict[str, str] | None = None,
        database_url: str | None = None,
        endpoint: str | None = None,
    ) -> Chaos:
        endpoint = endpoint or sqs_endpoint
        prefix = f"c{uuid.uuid4().hex[:10]}"
        queues = {}
        for name, visibility in (
            ("email", EMAIL_VISIBILITY_SECONDS),
            ("crm", CRM_VISIBILITY_SECONDS),
        ):
            created = asyncio.run(
                create_queues(
                    endpoint,
                    [f"{prefix}-{name}"],
                    max_receive_count=MAX_RECEIVE_COUNT,
                    visibility_timeout=visibility,
                )
            )
            queues[name] = created[f"{prefix}-{name}"]
        crm = crm_standin_factory()
        log_dir = tmp_path / f"logs-{len(stacks)}"
        log_dir.mkdir()
        stack = Stack(env={}, log_dir=log_dir, service_env=SERVICE_ENV)
        stack.env = stack_environment(
            database_url=database_url or database_url_factory(),
            sqs_endpoint=endpoint,
            queues=queues,
            smtp_port=smtp_sink.port,
            crm_url=crm.url,
            crm_token=crm.api_token,
            ports=stack.ports,
        )
        stack.env |= {
            "GRACEFUL_TIMEOUT_SECONDS": str(GRACE_SECONDS),
            "CRM_RATE_LIMIT_PER_SECOND": str(crm_rate),
            **(env or {}),
        }
        stacks.append(stack)
        # Registration first: it applies its migrations, which the others' do not depend on,
        # but starting one at a time keeps the 2-core CI box responsive.
        for service in services:
            stack.start(service)
        return Chaos(stack, smtp_sink, crm, queues, crm_rate)

    yield build
    for stack in stacks:
        stack.stop(timeout=GRACE_SECONDS + 10)


@pytest.fixture
def invariants(
    request: pytest.FixtureRequest,
) -> Callable[..., Counts]:
    """Wait for quiet, compute the invariants, add them to the summary, fail if one broke."""

    def check(chaos: Chaos, **options: Any) -> Counts:
        chaos.stack.wait_quiet(within=options.pop("within", 120))
        counts = check_invariants(chaos, request.node.name.removeprefix("test_"), **options)
        request.config.stash[SUMMARY].append(counts)
        assert not counts.problems, counts.line()
        return counts

    return check
