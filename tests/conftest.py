from collections.abc import Iterator
from pathlib import Path

import pytest

from alta_devstack.crm_standin import CrmStandin
from alta_devstack.smtp_sink import SmtpSink
from alta_devstack.sqs import QueueUrls

from .stack import Stack, stack_environment


@pytest.fixture
def stack(
    tmp_path: Path,
    database_url: str,
    sqs_endpoint: str,
    sqs_queues: dict[str, QueueUrls],
    smtp_sink: SmtpSink,
    crm_standin: CrmStandin,
) -> Iterator[Stack]:
    """Every service running as its own process against the real stand-ins."""
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    stack = Stack(env={}, log_dir=log_dir)
    stack.env = stack_environment(
        database_url=database_url,
        sqs_endpoint=sqs_endpoint,
        queues=sqs_queues,
        smtp_port=smtp_sink.port,
        crm_url=crm_standin.url,
        crm_token=crm_standin.api_token,
        ports=stack.ports,
    )
    stack.start()
    yield stack
    stack.stop()
