"""Email sender settings, read from the environment once at start-up."""

from typing import Literal, Self

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from alta_common.access import AccessSettings
from alta_common.settings import (
    DatabaseSettings,
    ServiceSettings,
    SqsSettings,
    require_real_secret,
)

SmtpSecurity = Literal["none", "starttls", "tls"]


class Settings(ServiceSettings, DatabaseSettings, SqsSettings, AccessSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    port: int = 8003

    email_queue_name: str = "email"
    email_dlq_name: str = "email-dlq"
    # Must match the queue's own visibility timeout: a delivery claim lasts this long.
    sqs_visibility_timeout_seconds: int = Field(default=30, ge=1, le=43_200)
    sqs_wait_seconds: int = Field(default=20, ge=0, le=20)
    consumer_pollers: int = Field(default=1, ge=1)
    retry_backoff_base_seconds: float = Field(default=2.0, gt=0)

    # Where the links in the emails point: the public web_bff origin.
    public_url: str = "http://127.0.0.1:8000"
    email_from: str = "Alta <no-reply@alta.local>"

    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65_535)
    smtp_security: SmtpSecurity = "none"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    # PEM file of the CAs trusted for the relay's certificate; unset: the system's.
    smtp_ca_file: str | None = None

    @field_validator("smtp_password")
    @classmethod
    def _real_smtp_password(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        return None if value is None else require_real_secret(value, info)

    @model_validator(mode="after")
    def _smtp_send_fits_in_claim(self) -> Self:
        # A send must end well before the message becomes visible again (and our claim on
        # it lapses), or a second replica would send the same email.
        if self.smtp_timeout_seconds > self.sqs_visibility_timeout_seconds / 3:
            raise ValueError(
                "SMTP_TIMEOUT_SECONDS must be at most a third of SQS_VISIBILITY_TIMEOUT_SECONDS"
            )
        return self

    @property
    def smtp_credentials(self) -> tuple[str, str] | None:
        if self.smtp_username and self.smtp_password:
            return self.smtp_username, self.smtp_password.get_secret_value()
        return None
