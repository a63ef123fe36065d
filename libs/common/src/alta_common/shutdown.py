"""Graceful shutdown: what a service does between SIGTERM and exit.

On the first SIGTERM (or SIGINT) the app starts draining at once: `/readyz` answers 503 so the
load balancer stops sending new requests, and the background workers registered with
`on_drain` (SQS consumers, the outbox relay) stop taking new work. After
`SHUTDOWN_DELAY_SECONDS` (time for the load balancer to notice) uvicorn stops accepting
connections, lets in-flight requests finish within `GRACEFUL_TIMEOUT_SECONDS`, and runs the
lifespan shutdown, where each worker finishes or hands back what it holds within the same grace.
"""

import asyncio
import signal
import socket
from collections.abc import Callable
from types import FrameType

import structlog
import uvicorn

log = structlog.get_logger("alta.shutdown")


class Draining:
    """Set once when the process is asked to stop; the callbacks run then, in the event loop."""

    def __init__(self) -> None:
        self.started = False
        self._callbacks: list[Callable[[], None]] = []

    def on_drain(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)
        if self.started:
            callback()

    def start(self) -> None:
        if self.started:
            return
        self.started = True
        for callback in self._callbacks:
            try:
                callback()
            except Exception:
                log.exception("drain callback failed")


class DrainingServer(uvicorn.Server):
    """A uvicorn server that marks the app as draining at the signal, then stops after a delay.

    uvicorn closes its listening socket as soon as it sees the signal; the delay keeps it open
    (serving, but not ready) while the load balancer takes the pod out of rotation.
    """

    def __init__(self, config: uvicorn.Config, draining: Draining, delay_seconds: float) -> None:
        super().__init__(config)
        self._draining = draining
        self._delay_seconds = delay_seconds
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        loop = self._loop
        if self._draining.started or loop is None or sig not in (signal.SIGTERM, signal.SIGINT):
            # A second signal (or one before the loop runs) means: stop now.
            super().handle_exit(sig, frame)
            return
        # Signal handlers run between bytecodes of the loop's thread: hand over to the loop.
        loop.call_soon_threadsafe(self._begin_drain, sig, frame)

    def _begin_drain(self, sig: int, frame: FrameType | None) -> None:
        log.info("draining", shutdown_in_seconds=self._delay_seconds)
        self._draining.start()
        assert self._loop is not None
        self._loop.call_later(self._delay_seconds, super().handle_exit, sig, frame)
