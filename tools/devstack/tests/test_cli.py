import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from alta_devstack.ports import find_free_port


def accepts_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.mark.parametrize(
    ("module", "port_variable"),
    [
        ("postgres", "DEVSTACK_PG_PORT"),
        ("sqs", "DEVSTACK_SQS_PORT"),
        ("smtp_sink", "DEVSTACK_SMTP_PORT"),
        ("crm_standin", "DEVSTACK_CRM_PORT"),
    ],
)
def test_serves_until_sigterm(module: str, port_variable: str, tmp_path: Path) -> None:
    port = find_free_port()
    env = {**os.environ, port_variable: str(port)}
    command = [sys.executable, "-m", f"alta_devstack.{module}"]
    with (tmp_path / "output.log").open("wb") as output:
        process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=output, stderr=output)  # noqa: S603
    try:
        deadline = time.monotonic() + 60
        while not accepts_connections(port):
            assert process.poll() is None, (tmp_path / "output.log").read_text()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        # As honcho does; the signal may come during startup, before "ready" is printed.
        process.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal once it has shut down gracefully.
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
        assert not accepts_connections(port)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_crm_standin_takes_its_limit_from_the_environment(tmp_path: Path) -> None:
    port = find_free_port()
    env = {**os.environ, "DEVSTACK_CRM_PORT": str(port), "DEVSTACK_CRM_LIMIT_PER_SECOND": "2"}
    command = [sys.executable, "-m", "alta_devstack.crm_standin"]
    with (tmp_path / "output.log").open("wb") as output:
        process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=output, stderr=output)  # noqa: S603
    try:
        deadline = time.monotonic() + 60
        while not accepts_connections(port):
            assert process.poll() is None, (tmp_path / "output.log").read_text()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        headers = {"Authorization": "Bearer dev-crm-token", "Idempotency-Key": "k"}
        contact = {
            "external_id": "u-1",
            "email": "ada@example.com",
            "name": "Ada",
            "status": "pending",
            "registered_at": "2026-01-01T00:00:00Z",
        }
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
            for _ in range(10):
                client.post("/contacts", json=contact)
            stats = client.get("/_control/stats").json()
        # Timing-independent: a busy machine may spread the requests over seconds.
        assert stats["rejected_429"] > 0
        assert stats["max_in_any_second"] == 2
    finally:
        process.terminate()
        process.wait(timeout=30)
