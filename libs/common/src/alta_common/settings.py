"""Typed settings shared by every service, read from the environment once at start-up."""

import ipaddress
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["development", "test", "production"]

# Values that show a secret was never really set; refused outside development.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "password", "dev", "test"})
MIN_SECRET_LENGTH = 16


class ServiceSettings(BaseSettings):
    """Defaults every service shares; each service subclasses it with its own fields."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    app_env: Environment = "development"
    log_level: str = "INFO"
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 16 * 1024
    # After SIGTERM: seconds in-flight requests get to finish, and (again) seconds a worker
    # gets to finish or hand back the messages it holds.
    graceful_timeout_seconds: float = Field(default=20.0, ge=0)
    # After SIGTERM: seconds the server keeps accepting requests while /readyz fails, so the
    # load balancer stops routing to it before it closes its port.
    shutdown_delay_seconds: float = Field(default=0.0, ge=0)
    # Comma-separated addresses or CIDRs of the proxies in front (the load balancer's subnets;
    # for authz, the BFF's). Only requests from them may set the client address and scheme
    # with X-Forwarded-For / X-Forwarded-Proto. Empty: nobody may.
    trusted_proxies: str = ""

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for item in filter(None, (part.strip() for part in value.split(","))):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"{item!r} is not an IP address or CIDR network") from exc
        return value

    @property
    def trusted_proxy_networks(self) -> list[str]:
        return [part.strip() for part in self.trusted_proxies.split(",") if part.strip()]

    @property
    def is_development(self) -> bool:
        return self.app_env == "development"


def require_real_secret(value: SecretStr, info: ValidationInfo) -> SecretStr:
    """Refuse a placeholder or short secret in production.

    Use as `_secrets = field_validator("api_token")(require_real_secret)` in a settings class.
    Development and test keep their convenient defaults; deployments set APP_ENV=production.
    """
    env = info.data.get("app_env", "development")
    secret = value.get_secret_value().strip()
    if env == "production" and (
        secret.lower() in PLACEHOLDER_SECRETS
        or secret.lower().startswith("dev")
        or len(secret) < MIN_SECRET_LENGTH
    ):
        raise ValueError(
            f"{info.field_name} must be set to a real secret of at least {MIN_SECRET_LENGTH}"
            f" characters when APP_ENV={env}"
        )
    return value


class DatabaseSettings(BaseSettings):
    """Mixin for services with a PostgreSQL pool."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    database_url: SecretStr = SecretStr("postgresql://postgres@127.0.0.1:54320/alta")
    db_pool_min_size: int = 1
    db_pool_max_size: int = 10
    db_connect_timeout_seconds: float = 5.0
    run_migrations_on_startup: bool = True


class SqsSettings(BaseSettings):
    """Mixin for services that talk to SQS. Credentials come from the AWS default chain (IRSA)."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    sqs_endpoint_url: str | None = None
    aws_region: str = "us-east-1"
