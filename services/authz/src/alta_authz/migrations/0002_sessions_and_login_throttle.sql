-- One row per login: every refresh token descended from it belongs to this family, and
-- revoking the family (logout, reuse of a rotated token, password change) ends them all.
CREATE TABLE authz.session_families (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    revoked_reason text CHECK (
        revoked_reason IN ('logout', 'logout_everywhere', 'reuse', 'password_changed', 'account_gone')
    )
);
CREATE INDEX session_families_live_by_user ON authz.session_families (user_id)
    WHERE revoked_at IS NULL;

-- Refresh tokens are random; only their SHA-256 is kept, so a database leak reveals none.
CREATE TABLE authz.refresh_tokens (
    token_hash bytea PRIMARY KEY,
    family_id uuid NOT NULL REFERENCES authz.session_families (id) ON DELETE CASCADE,
    issued_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    -- Set when exchanged for a new one; presenting it again is reuse.
    rotated_at timestamptz
);
CREATE INDEX refresh_tokens_family ON authz.refresh_tokens (family_id);

-- Failed logins per key: a SHA-256 of `account:<email>`, `ip:<address>` or
-- `pair:<email>|<address>`, so the table holds no addresses in clear.
CREATE TABLE authz.login_failures (
    key bytea PRIMARY KEY,
    failures integer NOT NULL,
    last_failure_at timestamptz NOT NULL,
    locked_until timestamptz
);
CREATE INDEX login_failures_last_failure_at ON authz.login_failures (last_failure_at);
