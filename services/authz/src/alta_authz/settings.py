from pathlib import Path

from pydantic import SecretStr, model_validator

from alta_common.settings import DatabaseSettings, ServiceSettings


class Settings(ServiceSettings, DatabaseSettings):
    port: int = 8001
    jwt_issuer: str = "alta-authz"
    jwt_audience: str = "alta"
    access_token_ttl_seconds: int = 15 * 60
    # PEM of an Ed25519 private key, inline or as a mounted secret file. Development without
    # one generates a throw-away key at start (tokens do not survive a restart).
    jwt_private_key: SecretStr | None = None
    jwt_private_key_file: Path | None = None
    password_hash_concurrency: int = 2

    @model_validator(mode="after")
    def _key_outside_development(self) -> "Settings":
        if self.app_env == "production" and not (self.jwt_private_key or self.jwt_private_key_file):
            raise ValueError("JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE must be set in production")
        return self
