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
        ("Cookie: __Host-alta_refresh=rfrsh-val; x=1", "rfrsh-val"),
        ({"response": {"body": {"refresh_token": "opaque-refresh"}}}, "opaque-refresh"),
        ("ValueError(\"{'email': 'a@b.c', 'password': 'pyth0n-repr'}\")", "pyth0n-repr"),
        ("open https://alta.example/reset-password/AbCdEf0123456789xyz", "AbCdEf0123456789xyz"),
        ("open https://alta.example/confirm?token=AbCdEf0123456789", "AbCdEf0123456789"),
        ({"extra": [{"headers": {"Set-Cookie": "alta_session=s3ss"}}]}, "s3ss"),
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


def test_exceptions_are_logged_without_their_frames_variables(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def handler(presented: str) -> None:
        raise RuntimeError("refresh failed")

    configure_logging("test", "INFO")
    try:
        try:
            handler("opaque-" + "token-in-a-local")
        except RuntimeError:
            structlog.get_logger("alta.test").exception("request failed")
        [line] = capsys.readouterr().out.splitlines()
    finally:
        logging.getLogger().handlers.clear()
        structlog.reset_defaults()

    record = json.loads(line)
    assert "refresh failed" in line
    assert record["exception"], "the traceback is still there"
    assert "opaque-token-in-a-local" not in line
