import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

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
