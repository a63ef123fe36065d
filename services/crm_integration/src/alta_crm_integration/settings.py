"""crm_integration's settings, read from the environment once at start-up."""

from typing import Self

from pydantic import Field, SecretStr, field_validator, model_validator

from alta_common.access import AccessSettings
from alta_common.settings import (
    DatabaseSettings,
    ServiceSettings,
    SqsSettings,
    require_real_secret,
)

DEV_CRM_API_TOKEN = "dev-crm-token"  # noqa: S105 (the development default, refused in production)

# Share of the SQS visibility timeout one message's handling may use; the rest covers the
# database and SQS calls around it, so a message is never redelivered while still in hand.
HANDLING_SHARE_OF_VISIBILITY = 0.8


class Settings(ServiceSettings, DatabaseSettings, SqsSettings, AccessSettings):
    port: int = 8004

    crm_queue_name: str = "crm"
    crm_dlq_name: str = "crm-dlq"
    sqs_wait_seconds: int = Field(default=20, ge=0, le=20)
    # The `crm` queue's own VisibilityTimeout must be at least this: a delivery lease lasts this
    # long, and 80 % of it must hold the worst-case handling (see below).
    sqs_visibility_timeout_seconds: int = Field(default=90, ge=1, le=43_200)
    consumer_pollers: int = Field(default=2, ge=1, le=16)

    crm_url: str = "http://127.0.0.1:8089"
    crm_api_token: SecretStr = SecretStr(DEV_CRM_API_TOKEN)
    # Bounds each whole request (connect, send, wait for the answer), not each phase.
    crm_timeout_seconds: float = Field(default=5.0, gt=0)
    crm_max_attempts: int = Field(default=3, ge=1, le=10)
    retry_backoff_base_seconds: float = Field(default=2.0, gt=0)

    # The CRM accepts fewer than 100 requests/s in total, from all replicas together.
    crm_rate_limit_per_second: float = Field(default=90.0, gt=0, le=1000)
    # Longest one attempt waits for an in-flight permit and a send slot. Generous on purpose:
    # a message given back for want of a slot uses up one of the queue's receives.
    crm_rate_limit_max_wait_seconds: float = Field(default=10.0, gt=0)
    # Requests reach the CRM with varying delays (network, scheduling); slots are spaced
    # (1 s + this) / rate apart so that a window of one second at the CRM still holds at most
    # `rate` of them when one request is late by up to this much more than another. A sender
    # that wakes later than this after its slot takes a new one, so it must cover the usual
    # wake-up delay of a sleeping task, or most slots go unused.
    crm_rate_limit_jitter_allowance_seconds: float = Field(default=0.05, ge=0.01, lt=1)
    # CRM requests one replica has open at once, those waiting for their slot included.
    crm_max_in_flight: int = Field(default=16, ge=1, le=1000)

    _real_token = field_validator("crm_api_token")(require_real_secret)

    @property
    def handling_budget_seconds(self) -> float:
        """How long one message may take, retries included, before it goes back to SQS."""
        return self.sqs_visibility_timeout_seconds * HANDLING_SHARE_OF_VISIBILITY

    @property
    def worst_case_handling_seconds(self) -> float:
        """Every attempt timing out after the longest wait for a permit and a slot, with the
        backoffs between."""
        backoffs = sum(
            self.retry_backoff_base_seconds * 2.0**attempt
            for attempt in range(self.crm_max_attempts - 1)
        )
        per_attempt = self.crm_rate_limit_max_wait_seconds + self.crm_timeout_seconds
        return self.crm_max_attempts * per_attempt + backoffs

    @model_validator(mode="after")
    def _retries_fit_in_visibility_timeout(self) -> Self:
        if self.worst_case_handling_seconds > self.handling_budget_seconds:
            raise ValueError(
                f"{self.crm_max_attempts} CRM attempts can take "
                f"{self.worst_case_handling_seconds:.1f} s (limiter wait, timeout and backoff), "
                f"more than {self.handling_budget_seconds:.1f} s, "
                f"{HANDLING_SHARE_OF_VISIBILITY:.0%} of SQS_VISIBILITY_TIMEOUT_SECONDS="
                f"{self.sqs_visibility_timeout_seconds}: lower CRM_MAX_ATTEMPTS, "
                "CRM_TIMEOUT_SECONDS, CRM_RATE_LIMIT_MAX_WAIT_SECONDS or "
                "RETRY_BACKOFF_BASE_SECONDS, or raise the visibility timeout"
            )
        return self
