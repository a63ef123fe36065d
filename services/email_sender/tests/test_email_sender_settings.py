"""Settings that would make the service unsafe are refused at start-up."""

import pytest
from pydantic import SecretStr, ValidationError

from alta_email_sender.settings import Settings


def test_smtp_timeout_must_stay_well_under_the_visibility_timeout() -> None:
    with pytest.raises(ValidationError, match="SMTP_TIMEOUT_SECONDS"):
        Settings(smtp_timeout_seconds=11, sqs_visibility_timeout_seconds=30)

    assert Settings(smtp_timeout_seconds=10, sqs_visibility_timeout_seconds=30)


def test_a_placeholder_smtp_password_is_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="smtp_password"):
        Settings(app_env="production", smtp_username="alta", smtp_password=SecretStr("changeme"))

    settings = Settings(
        app_env="production", smtp_username="alta", smtp_password=SecretStr("s3-Xq9!rT-vW7pL2mK8")
    )
    assert settings.smtp_credentials == ("alta", "s3-Xq9!rT-vW7pL2mK8")


def test_smtp_login_only_with_both_username_and_password() -> None:
    assert Settings(smtp_username="alta").smtp_credentials is None
    assert Settings(smtp_password=SecretStr("s3-Xq9!rT-vW7pL2mK8")).smtp_credentials is None
