"""The whole system as separate processes, the way `make run` starts it, on free ports."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from aiobotocore.session import get_session

from alta_devstack.ports import find_free_port
from alta_devstack.sqs import QueueUrls

SERVICES = ("authz", "registration", "email_sender", "crm_integration", "web_bff")


@dataclass
class Stack:
    """Starts each service with `python -m alta_<name>`; logs go to `log_dir/<name>.log`.

    More replicas of a service run as instances `<service>-2`, `<service>-3`, ... (each on its
    own port, with its own log), started by `add_replica`.
    """

    env: dict[str, str]
    log_dir: Path
    ports: dict[str, int] = field(default_factory=lambda: {s: find_free_port() for s in SERVICES})
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # Per-service additions to `env`, for every instance of the service. authz believes the
    # client address the BFF forwards (for its per-address login limit) only from the BFF's
    # network: here, this host.
    service_env: dict[str, dict[str, str]] = field(
        default_factory=lambda: {"authz": {"TRUSTED_PROXIES": "127.0.0.1"}}
    )

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def start(
        self, *instances: str, ready_within: float = 60, env: dict[str, str] | None = None
    ) -> None:
        """Start instances (all services by default); `env` adds to the stack's environment."""
        for instance in instances or SERVICES:
            service = instance.split("-")[0]
            process_env = {
                **os.environ,
                **self.env,
                **self.service_env.get(service, {}),
                **(env or {}),
            }
            process_env["PORT"] = str(self.ports[instance])
            with (self.log_dir / f"{instance}.log").open("ab") as log:
                self.processes[instance] = subprocess.Popen(  # noqa: S603 - our own modules
                    [sys.executable, "-m", f"alta_{service}"],
                    env=process_env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
        for instance in instances or SERVICES:
            self._wait_ready(instance, ready_within)

    def add_replica(self, service: str, **start_options: Any) -> str:
        """Start one more instance of `service`; returns its instance name."""
        number = 2
        while f"{service}-{number}" in self.ports:
            number += 1
        instance = f"{service}-{number}"
        self.ports[instance] = find_free_port()
        self.start(instance, **start_options)
        return instance

    def instances(self, service: str) -> list[str]:
        return [name for name in self.processes if name.split("-")[0] == service]

    def stop(self, *instances: str, timeout: float = 30) -> None:
        for instance in instances or tuple(self.processes):
            process = self.processes.pop(instance)
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def terminate(self, instance: str) -> subprocess.Popen[bytes]:
        """SIGTERM, as Kubernetes sends it; the caller waits for the exit it expects."""
        process = self.processes.pop(instance)
        process.send_signal(signal.SIGTERM)
        return process

    def kill(self, instance: str) -> None:
        """SIGKILL: the instance gets no chance to finish or give back anything."""
        process = self.processes.pop(instance)
        process.kill()
        process.wait()

    def is_quiet(self) -> bool:
        """Nothing left in flight: the outbox is empty and both queues hold no message."""
        with psycopg.connect(self.env["DATABASE_URL"]) as conn:
            row = conn.execute("SELECT count(*) FROM registration.outbox").fetchone()
        if row is None or row[0] > 0:
            return False
        return asyncio.run(self._queues_empty())

    async def _queues_empty(self) -> bool:
        names = ("EMAIL_QUEUE_NAME", "CRM_QUEUE_NAME")
        async with get_session().create_client(
            "sqs", endpoint_url=self.env["SQS_ENDPOINT_URL"]
        ) as sqs:
            for name in names:
                url = (await sqs.get_queue_url(QueueName=self.env[name]))["QueueUrl"]
                counts = await sqs.get_queue_attributes(
                    QueueUrl=url,
                    AttributeNames=[
                        "ApproximateNumberOfMessages",
                        "ApproximateNumberOfMessagesNotVisible",
                    ],
                )
                if any(int(v) for v in counts["Attributes"].values()):
                    return False
        return True

    def logs(self, service: str | None = None) -> str:
        paths = [self.log_dir / f"{service}.log"] if service else sorted(self.log_dir.glob("*.log"))
        return "\n".join(path.read_text() for path in paths)

    def wait_quiet(self, within: float = 90) -> None:
        deadline = time.monotonic() + within
        while not self.is_quiet():
            if time.monotonic() > deadline:
                raise AssertionError(f"the stack did not settle within {within} s")
            time.sleep(0.5)

    def _wait_ready(self, service: str, within: float) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.processes[service].poll() is not None:
                raise RuntimeError(f"{service} exited:\n{self._tail(service)}")
            try:
                if httpx.get(f"{self.url(service)}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{service} not ready in {within}s:\n{self._tail(service)}")

    def _tail(self, service: str) -> str:
        return "\n".join((self.log_dir / f"{service}.log").read_text().splitlines()[-30:])


def stack_environment(
    *,
    database_url: str,
    sqs_endpoint: str,
    queues: dict[str, QueueUrls],
    smtp_port: int,
    crm_url: str,
    crm_token: str,
    ports: dict[str, int],
) -> dict[str, str]:
    bff = f"http://127.0.0.1:{ports['web_bff']}"
    authz = f"http://127.0.0.1:{ports['authz']}"
    return {
        "APP_ENV": "test",
        "LOG_LEVEL": "INFO",
        "DATABASE_URL": database_url,
        "SQS_ENDPOINT_URL": sqs_endpoint,
        "EMAIL_QUEUE_NAME": queues["email"].name,
        "EMAIL_DLQ_NAME": queues["email"].dlq_name,
        "CRM_QUEUE_NAME": queues["crm"].name,
        "CRM_DLQ_NAME": queues["crm"].dlq_name,
        "SQS_WAIT_SECONDS": "1",
        "RETRY_BACKOFF_BASE_SECONDS": "1",
        "OUTBOX_POLL_INTERVAL_SECONDS": "0.1",
        "ACCOUNT_NOTICE_INTERVAL_SECONDS": "0",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "CRM_URL": crm_url,
        "CRM_API_TOKEN": crm_token,
        "PUBLIC_URL": bff,
        "AUTHZ_URL": authz,
        "AUTHZ_JWKS_URL": f"{authz}/.well-known/jwks.json",
        "REGISTRATION_URL": f"http://127.0.0.1:{ports['registration']}",
        "EMAIL_SENDER_URL": f"http://127.0.0.1:{ports['email_sender']}",
        "CRM_INTEGRATION_URL": f"http://127.0.0.1:{ports['crm_integration']}",
    }
