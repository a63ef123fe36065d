"""Hands emails to the SMTP relay."""

import asyncio
from email.message import EmailMessage

import aiosmtplib

from alta_email_sender.settings import Settings


class SmtpFailed(Exception):
    """The relay did not accept the email; it is worth trying again later."""


class SmtpUtf8Unsupported(Exception):
    """The address needs SMTPUTF8 and the relay does not offer it: retrying cannot help."""


class Mailer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def send(self, message: EmailMessage) -> None:
        settings = self._settings
        username, password = settings.smtp_credentials or (None, None)
        try:
            # aiosmtplib's timeout bounds each step; this bounds the whole conversation, which
            # must end long before the SQS message (and our claim on it) times out.
            async with asyncio.timeout(settings.smtp_timeout_seconds):
                await aiosmtplib.send(
                    message,
                    hostname=settings.smtp_host,
                    port=settings.smtp_port,
                    username=username,
                    password=password,
                    use_tls=settings.smtp_security == "tls",
                    # False, not None: None would upgrade whenever the relay offers STARTTLS.
                    start_tls=settings.smtp_security == "starttls",
                    timeout=settings.smtp_timeout_seconds,
                )
        except aiosmtplib.SMTPNotSupported as exc:
            # aiosmtplib raises it only for a non-ASCII address on a relay without SMTPUTF8.
            raise SmtpUtf8Unsupported(
                "the relay does not support SMTPUTF8, which this address needs"
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            # Only the reply code: the reply text may quote the recipient address.
            raise SmtpFailed(f"{type(exc).__name__} {exc.code}") from exc
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = sorted({refused.code for refused in exc.recipients})
            raise SmtpFailed(f"SMTPRecipientsRefused {codes}") from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise SmtpFailed(type(exc).__name__) from exc
