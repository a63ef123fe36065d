"""Settings that could not work are refused at start-up, and Retry-After is read both ways."""

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from alta_crm_integration.crm_client import Outcome, classify, parse_retry_after
from alta_crm_integration.settings import Settings


def test_the_defaults_fit_the_visibility_timeout() -> None:
    settings = Settings()

    assert settings.worst_case_handling_seconds <= settings.handling_budget_seconds


@pytest.mark.parametrize(
    "overrides",
    [
        {"crm_max_attempts": 6},
        # The devstack queues' 30 s cannot hold three 10 s limiter waits.
        {"sqs_visibility_timeout_seconds": 30},
        {"crm_rate_limit_max_wait_seconds": 20},
    ],
)
def test_retries_that_outlast_the_visibility_timeout_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="SQS_VISIBILITY_TIMEOUT_SECONDS"):
        Settings(**overrides)


@pytest.mark.parametrize("token", ["dev-crm-token", "changeme", ""])
def test_production_refuses_a_placeholder_token(token: str) -> None:
    with pytest.raises(ValidationError, match="crm_api_token"):
        Settings(app_env="production", crm_api_token=SecretStr(token))


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3.0),
        (" 0 ", 0.0),
        ("Wed, 21 Oct 2015 07:28:05 GMT", 5.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
        (None, 1.0),
        ("soon", 1.0),
    ],
)
def test_retry_after_as_seconds_or_http_date(header: str | None, seconds: float) -> None:
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)

    assert parse_retry_after(header, now=now) == seconds


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (201, Outcome.DELIVERED),
        (429, Outcome.RATE_LIMITED),
        (500, Outcome.UNAVAILABLE),
        (503, Outcome.UNAVAILABLE),
        (404, Outcome.NOT_FOUND),
        (400, Outcome.REFUSED),
        (401, Outcome.REFUSED),
        (409, Outcome.REFUSED),
        (422, Outcome.REFUSED),
    ],
)
def test_answers_are_classified(status: int, outcome: Outcome) -> None:
    assert classify(httpx.Response(status)).outcome is outcome
