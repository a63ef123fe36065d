"""Hands emails to the SMTP relay."""

import asyncio
import ssl
from email.message import EmailMessage

import aiosmtplib

from alta_email_sender.settings import Settings


class SmtpFailed(Exception):
    """The relay did not accept the email; it is worth trying again later."""


class SmtpUtf8Unsupported(Exception):
    """The address needs SMTPUTF8 and the relay does not offer it: retrying cannot help."""


class Mailer:
    """Sends each email on its own connection.

    An email counts as sent once the relay accepted it (250 after DATA). The QUIT that follows
    is a courtesy done in the background: a relay that drops the connection then, or a
    shutdown that cancels the sender then, must not make us send the email a second time.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._closing: set[asyncio.Task[None]] = set()
        self._tls_context = (
            ssl.create_default_context(cafile=settings.smtp_ca_file)
            if settings.smtp_ca_file
            else None
        )

    async def send(self, message: EmailMessage) -> None:
        settings = self._settings
        username, password = settings.smtp_credentials or (None, None)
        smtp = aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=username,
            password=password,
            use_tls=settings.smtp_security == "tls",
            # False, not None: None would upgrade whenever the relay offers STARTTLS. True runs
            # STARTTLS once, inside connect(); nothing here calls starttls() again.
            start_tls=settings.smtp_security == "starttls",
            tls_context=self._tls_context,
            timeout=settings.smtp_timeout_seconds,
        )
        try:
            # aiosmtplib's timeout bounds each step; this bounds the whole conversation, which
            # must end long before the SQS message (and our claim on it) times out.
            async with asyncio.timeout(settings.smtp_timeout_seconds):
                await smtp.connect()
                await smtp.send_message(message)
        except aiosmtplib.SMTPNotSupported as exc:
            smtp.close()
            # aiosmtplib raises it only for a non-ASCII address on a relay without SMTPUTF8.
            raise SmtpUtf8Unsupported(
                "the relay does not support SMTPUTF8, which this address needs"
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            smtp.close()
            # Only the reply code: the reply text may quote the recipient address.
            raise SmtpFailed(f"{type(exc).__name__} {exc.code}") from exc
        except aiosmtplib.SMTPRecipientsRefused as exc:
            smtp.close()
            codes = sorted({refused.code for refused in exc.recipients})
            raise SmtpFailed(f"SMTPRecipientsRefused {codes}") from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            smtp.close()
            raise SmtpFailed(type(exc).__name__) from exc
        except BaseException:
            smtp.close()
            raise
        closing = asyncio.create_task(self._quit(smtp))
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    async def _quit(self, smtp: aiosmtplib.SMTP) -> None:
        try:
            async with asyncio.timeout(self._settings.smtp_timeout_seconds):
                await smtp.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            # The email was accepted already; how the relay ends the conversation is its affair.
            pass
        finally:
            smtp.close()
