"""Helpers to run servers: an ASGI app in a background thread, and stopping on a signal."""

import signal
import threading
import time

import uvicorn
from starlette.types import ASGIApp


class ServerThread:
    """Runs an ASGI app with uvicorn in a daemon thread (uvicorn skips signal handling there)."""

    def __init__(self, app: ASGIApp, port: int, host: str = "127.0.0.1") -> None:
        self.url = f"http://{host}:{port}"
        # Forwarded headers are the app's business (TRUSTED_PROXIES), as in production.
        self._config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, proxy_headers=False
        )
        self._server = uvicorn.Server(self._config)
        self._thread = threading.Thread()

    def start(self, timeout: float = 10.0) -> None:
        """Serve the app; also again after `stop()`, on the same port (tests of an outage)."""
        self._server = uvicorn.Server(self._config)
        self._thread = threading.Thread(
            target=self._server.run, name=f"uvicorn-{self._config.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            # uvicorn exits the thread when it cannot bind, so a dead thread means a failed start.
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on {self.url}")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join()


def shutdown_requested() -> threading.Event:
    """An event set by SIGINT or SIGTERM (as honcho sends). Call it before starting anything,
    so that a signal during startup still ends in a clean stop rather than an orphaned child."""
    requested = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: requested.set())
    return requested
