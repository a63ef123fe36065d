-- When the password last changed (reset or change). authz refuses every session that
-- started before it, so a reset or change logs the account out everywhere.
ALTER TABLE registration.users ADD COLUMN password_changed_at timestamptz;

-- When the owner was last emailed a reset link (throttles those emails per account).
ALTER TABLE registration.users ADD COLUMN last_reset_email_at timestamptz;

-- Single-use password reset links; as with confirmations only a SHA-256 of the token is kept.
CREATE TABLE registration.password_reset_tokens (
    token_hash bytea PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES registration.users (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX password_reset_tokens_user_id ON registration.password_reset_tokens (user_id);

-- The admin console lists sign-ups newest first.
CREATE INDEX users_registered_at ON registration.users (registered_at DESC, id);

-- New columns go last: CREATE OR REPLACE VIEW may only append.
CREATE OR REPLACE VIEW registration.user_credentials AS
    SELECT id, email, password_hash, status, password_changed_at FROM registration.users;
