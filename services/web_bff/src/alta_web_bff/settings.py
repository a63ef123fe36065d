"""web_bff settings, read from the environment once at start-up."""

from urllib.parse import urlsplit

from pydantic import SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from alta_common.settings import ServiceSettings, require_real_secret


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` as browsers send it in `Origin`, or None for anything else."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default_port = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" if port in (None, default_port) else f"{scheme}://{host}:{port}"


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    port: int = 8000
    # The address people type; its origin is the only one allowed to post our forms.
    public_url: str = "http://127.0.0.1:8000"
    registration_url: str = "http://127.0.0.1:8002"
    authz_url: str = "http://127.0.0.1:8001"
    # The consumers' admin-only delivery lookups, for the admin console.
    email_sender_url: str = "http://127.0.0.1:8003"
    crm_integration_url: str = "http://127.0.0.1:8004"
    jwt_issuer: str = "alta-authz"
    jwt_audience: str = "alta"
    # Registration hashes the password before answering, so sign-ups need more than a moment.
    backend_timeout_seconds: float = 10.0
    # Signs the CSRF tokens; every replica must share it.
    csrf_secret: SecretStr = SecretStr("dev")

    _real_secrets = field_validator("csrf_secret")(require_real_secret)

    @field_validator(
        "public_url", "registration_url", "authz_url", "email_sender_url", "crm_integration_url"
    )
    @classmethod
    def _http_url(cls, value: str) -> str:
        if origin_of(value) is None:
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @property
    def public_origin(self) -> str:
        origin = origin_of(self.public_url)
        assert origin is not None  # checked by the validator
        return origin

    @property
    def uses_https(self) -> bool:
        return self.public_origin.startswith("https://")
