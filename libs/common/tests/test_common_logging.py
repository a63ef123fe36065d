"""Secrets never reach a log line, whatever shape they arrive in."""

import json
import logging

import pytest
import structlog

from alta_common.logging import REDACTED, configure_logging, redact

JWT = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("value", "secret"),
    [
        ({"password": "hunter2hunter2"}, "hunter2hunter2"),
        ({"user": {"credentials": {"Password": "p4ss-w0rd"}}}, "p4ss-w0rd"),
        ({"headers": [("authorization", "Bearer abc.def.ghi")]}, "abc.def.ghi"),
        ({"items": [{"csrf_token": "c5rf"}]}, "c5rf"),
        ({"session": "opaque-session"}, "opaque-session"),
        ("GET /confirm?token=s3cr3t-t0ken&x=1", "s3cr3t-t0ken"),
        ("password=letmein123&email=a@b.c", "letmein123"),
        ('{"email": "a@b.c", "confirmation_token": "tok-123"}', "tok-123"),
        ("Authorization: Bearer opaque.token.value", "opaque.token.value"),
        ("Cookie: alta_session=sessval; alta_csrf=csrfval", "sessval"),
        ("Cookie: alta_session=sessval; alta_csrf=csrfval", "csrfval"),
        (f"the token was {JWT} today", JWT),
    ],
)
def test_secrets_are_masked_in_every_shape(value: object, secret: str) -> None:
    masked = json.dumps(redact(value))

    assert secret not in masked
    assert REDACTED in masked


def test_ordinary_values_are_kept() -> None:
    value = {"email": "a@example.com", "status": 422, "path": "/registrations", "n": [1, 2]}

    assert redact(value) == value


def test_every_logger_goes_through_redaction(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("test", "INFO")
    try:
        structlog.get_logger("alta.test").info("sign-up", password="structlog-secret")
        logging.getLogger("uvicorn.error").info("link %s", "/confirm?token=stdlib-secret")
        lines = capsys.readouterr().out.splitlines()
    finally:
        logging.getLogger().handlers.clear()
        structlog.reset_defaults()

    assert len(lines) == 2
    records = [json.loads(line) for line in lines]
    assert records[0]["password"] == REDACTED
    assert "stdlib-secret" not in records[1]["event"]
    assert all(r["service"] == "test" for r in records)
