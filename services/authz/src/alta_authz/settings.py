from pathlib import Path

from pydantic import model_validator

from alta_common.settings import DatabaseSettings, ServiceSettings


class Settings(ServiceSettings, DatabaseSettings):
    port: int = 8001
    jwt_issuer: str = "alta-authz"
    jwt_audience: str = "alta"
    access_token_ttl_seconds: int = 15 * 60
    # A directory (a mounted Kubernetes Secret) holding `current.pem`, the Ed25519 key that
    # signs, and optionally `previous.pem`, still published so its tokens keep verifying.
    # Development without one generates a throw-away key at start.
    jwt_keys_dir: Path | None = None
    # How often the directory is re-read; a rotated secret is picked up without a restart.
    jwt_keys_reload_seconds: float = 10.0
    # A new current key signs only once it has been published this long, so that every
    # verifier may refetch the JWKS (JwtVerifier refetches at most every 30 s) before it meets it.
    jwt_key_activation_seconds: float = 60.0
    # Refresh tokens: each one lives this long unused; a login's session at most session_max_age.
    refresh_token_ttl_seconds: int = 14 * 24 * 3600
    session_max_age_seconds: int = 30 * 24 * 3600
    # A just-rotated refresh token presented again within this window is a browser's parallel
    # refresh (two tabs), not a theft: it gets a token of its own instead of ending the session.
    refresh_reuse_grace_seconds: int = 10
    password_hash_concurrency: int = 2
    # Brute force: failures counted per account+client IP, per account and per client IP.
    # Past a threshold each further failure locks that key for a doubling delay, capped.
    login_failure_window_seconds: int = 15 * 60
    login_pair_threshold: int = 5
    login_account_threshold: int = 20
    login_ip_threshold: int = 100
    login_lock_base_seconds: int = 30
    login_lock_max_seconds: int = 15 * 60
    # The per-account lock (the one a stranger could trigger) is capped lower, so a victim
    # is delayed at most this long, never locked out.
    login_account_lock_max_seconds: int = 5 * 60

    @model_validator(mode="after")
    def _keys_outside_development(self) -> "Settings":
        if self.app_env == "production" and self.jwt_keys_dir is None:
            raise ValueError("JWT_KEYS_DIR must be set in production")
        return self
