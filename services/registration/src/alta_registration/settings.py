from alta_common.settings import DatabaseSettings, ServiceSettings, SqsSettings


class Settings(ServiceSettings, DatabaseSettings, SqsSettings):
    port: int = 8002
    email_queue_name: str = "email"
    crm_queue_name: str = "crm"
    # Concurrent argon2id hashes per replica (19 MiB each).
    password_hash_concurrency: int = 2
    confirmation_token_ttl_hours: int = 24
    # At most one email per account per interval for repeated sign-ups, so nobody can flood
    # an address by signing up with it again and again.
    account_notice_interval_seconds: int = 300
    # A reset link is valid this long, and at most one is emailed per account per interval.
    password_reset_token_ttl_minutes: int = 60
    password_reset_interval_seconds: int = 60
    outbox_batch_size: int = 10
    outbox_poll_interval_seconds: float = 0.5
    # authz decides every protected request (alta_common.authorization).
    authz_url: str = "http://127.0.0.1:8001"
    authz_jwks_url: str = "http://127.0.0.1:8001/.well-known/jwks.json"
    jwt_issuer: str = "alta-authz"
    jwt_audience: str = "alta"
