"""An SMTP server that accepts every message and keeps it as an .eml file, with switches that
let tests make it refuse, stall or hang up."""

import asyncio
import email
import email.policy
import itertools
import logging
import os
import re
import threading
import time
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from alta_devstack.servers import shutdown_requested

logger = logging.getLogger(__name__)

CONFIRM_LINK = re.compile(r"https?://[^\s\"'<>]+/confirm\?token=[^\s\"'<>]+")


class SmtpSink:
    def __init__(self, mail_dir: Path, host: str = "127.0.0.1", port: int = 1025) -> None:
        self.mail_dir = mail_dir
        self.host = host
        self.port = port
        self._controller: Controller | None = None
        self._sequence = itertools.count()
        self._lock = threading.Lock()
        self._rejections: list[str] = []
        self._data_delays: list[float] = []
        self._hang_ups_at_quit = 0

    def start(self) -> None:
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        # A Controller closes its event loop on stop, so every start needs a new one.
        self._controller = Controller(
            self, hostname=self.host, port=self.port, server_hostname="smtp-sink"
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def reject_next(
        self, count: int, code: int = 451, text: str = "4.3.0 Mail system temporarily unavailable"
    ) -> None:
        with self._lock:
            self._rejections.extend([f"{code} {text}"] * count)

    def clear(self) -> None:
        """Drop every stored message and pending switch."""
        with self._lock:
            self._rejections.clear()
            self._data_delays.clear()
            self._hang_ups_at_quit = 0
        for path in self.mail_dir.glob("*.eml"):
            path.unlink()

    def delay_data(self, seconds: float, count: int = 1) -> None:
        """The next `count` messages are answered only `seconds` after their DATA."""
        with self._lock:
            self._data_delays.extend([seconds] * count)

    def hang_up_at_quit(self, count: int = 1) -> None:
        """The next `count` QUITs get no reply: the connection is cut after the message was
        accepted (250 after DATA) and before the goodbye."""
        with self._lock:
            self._hang_ups_at_quit += count

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._lock:
            hang_up = self._hang_ups_at_quit > 0
            self._hang_ups_at_quit -= hang_up
        if hang_up and isinstance(server.transport, asyncio.Transport):
            server.transport.abort()
        return "221 Bye"

    def messages(self) -> list[EmailMessage]:
        return [_parse(path.read_bytes()) for path in sorted(self.mail_dir.glob("*.eml"))]

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._lock:
            if self._rejections:
                return self._rejections.pop(0)
            delay = self._data_delays.pop(0) if self._data_delays else 0.0
        if delay:
            await asyncio.sleep(delay)
        if server.transport is None or server.transport.is_closing():
            # The client gave up before we could answer (a stall, or this process too busy):
            # like a relay that keeps only what it acknowledges, keep nothing; the sender
            # counts it as failed and sends it again.
            return "421 4.4.2 connection lost"
        assert envelope.original_content is not None
        # Nanoseconds sort by arrival; the sequence number breaks ties within one clock tick.
        name = f"{time.time_ns():020d}-{next(self._sequence):06d}.eml"
        (self.mail_dir / name).write_bytes(envelope.original_content)
        message = _parse(envelope.original_content)
        body = message.get_body(preferencelist=("plain", "html"))
        links = CONFIRM_LINK.findall(body.get_content()) if body is not None else []
        logger.info(
            "mail to %s, subject %r%s",
            ", ".join(envelope.rcpt_tos),
            message["subject"],
            "".join(f", link: {link}" for link in links),
        )
        return "250 OK"


def _parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)  # guaranteed by policy.default
    return message


def main() -> None:
    shutdown = shutdown_requested()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    # aiosmtpd logs every connection and command at INFO; keep only our line per message.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    sink = SmtpSink(Path(".data/mail"), port=int(os.environ.get("DEVSTACK_SMTP_PORT", "1025")))
    sink.start()
    print(f"smtp sink ready: {sink.host}:{sink.port}, mail in {sink.mail_dir}", flush=True)
    shutdown.wait()
    sink.stop()


if __name__ == "__main__":
    main()
