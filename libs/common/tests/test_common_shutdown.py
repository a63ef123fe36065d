"""SIGTERM to a real service process: readiness fails at once, in-flight requests finish."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from alta_devstack.ports import find_free_port

# A service of its own, run by `serve` exactly as the real ones are.
SERVICE_MODULE = """
import asyncio
from starlette.responses import JSONResponse
from starlette.routing import Route
from alta_common.service import create_service_app, serve
from alta_common.settings import ServiceSettings


async def slow(request):
    await asyncio.sleep(float(request.query_params["seconds"]))
    return JSONResponse({"finished": True})


def create_app(settings):
    return create_service_app(settings, routes=[Route("/slow", slow)])


if __name__ == "__main__":
    serve("slow_service:create_app", ServiceSettings())
"""


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    (tmp_path / "slow_service.py").write_text(SERVICE_MODULE)
    port = find_free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp_path),
        "PORT": str(port),
        "GRACEFUL_TIMEOUT_SECONDS": "10",
        "SHUTDOWN_DELAY_SECONDS": "1",
    }
    process = subprocess.Popen(  # noqa: S603 - a module this test wrote
        [sys.executable, str(tmp_path / "slow_service.py")],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/readyz").status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert process.poll() is None, "service exited during start-up"
        assert time.monotonic() < deadline, "service did not start"
        time.sleep(0.1)
    yield process, url
    if process.poll() is None:
        process.kill()
        process.wait()


async def test_sigterm_fails_readiness_at_once_and_lets_in_flight_requests_finish(
    service: tuple[subprocess.Popen[bytes], str],
) -> None:
    process, url = service
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        in_flight = asyncio.create_task(http.get("/slow", params={"seconds": 3}))
        await asyncio.sleep(0.5)  # the request is being handled
        process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.2)

        readiness = await http.get("/readyz")
        assert readiness.status_code == 503
        assert readiness.json()["status"] == "draining"
        # Serving goes on during the delay: a request arriving now is still answered.
        assert (await http.get("/slow", params={"seconds": 0})).status_code == 200

        response = await in_flight
        assert response.status_code == 200
        assert response.json() == {"finished": True}

    await asyncio.to_thread(process.wait, 20)
    assert process.returncode in (0, -signal.SIGTERM)
