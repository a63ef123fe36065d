"""structlog JSON logging for every service, with secrets redacted wherever they appear."""

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any

import structlog
from structlog.types import EventDict, WrappedLogger

REDACTED = "[REDACTED]"
# Key names that hold secrets (a pattern of names, not a secret itself).
_SECRET_WORDS = "|".join(
    [
        *("pass(?:word)?", "token", "secret", "authorization", "cookie", "session"),
        *("credential", "api[_-]?key", "csrf", "jwt", "hash"),
    ]
)
_SECRET_KEY = re.compile(_SECRET_WORDS, re.IGNORECASE)
_SECRET_IN_TEXT = [
    # query strings and form bodies: token=…, password=…
    re.compile(r"(\b\w*(?:token|password|secret)=)[^&\s\"']+", re.IGNORECASE),
    # JSON text: "password": "…", "confirmation_token": "…"
    re.compile(rf"(\"[\w-]*(?:{_SECRET_WORDS})[\w-]*\"\s*:\s*\")[^\"]*", re.IGNORECASE),
    # Python reprs, as in exception messages: 'password': '…'
    re.compile(rf"('[\w-]*(?:{_SECRET_WORDS})[\w-]*'\s*:\s*')[^']*", re.IGNORECASE),
    # links carrying a token in their path: /confirm/…, /reset-password/…
    re.compile(r"(/(?:confirm|reset)[\w-]*/)[A-Za-z0-9_-]{16,}", re.IGNORECASE),
    # Authorization and Cookie header values
    re.compile(r"((?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE),
    re.compile(r"((?:^|[\s;,])(?:__Host-)?alta_\w+=)[^;\s,]+"),
    # a JWT anywhere: header.payload.signature, the header always starting with {"
    re.compile(r"()eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"),
]


def _redact_text(text: str) -> str:
    for pattern in _SECRET_IN_TEXT:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


def redact(value: Any) -> Any:
    """Return a copy of `value` with secret-looking keys and token-bearing text masked."""
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _redact_text(value)
    return value


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: the last line of defence against secrets in logs."""
    return redact(event_dict)  # type: ignore[no-any-return]


def configure_logging(service: str, level: str = "INFO") -> None:
    """JSON lines on stdout for structlog and the standard library (uvicorn included)."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        structlog.processors.dict_tracebacks,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _add_service(service),
            redact_secrets,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Access lines come from our own middleware; uvicorn's would repeat them without a request id.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    for noisy in ("botocore", "aiobotocore", "httpx", "httpcore", "aiosmtplib", "werkzeug"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def _add_service(service: str) -> Any:
    def processor(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("service", service)
        # uvicorn's ANSI-coloured copy of the message adds nothing to a JSON line.
        event_dict.pop("color_message", None)
        return event_dict

    return processor
