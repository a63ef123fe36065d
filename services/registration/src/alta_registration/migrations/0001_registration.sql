CREATE TABLE registration.users (
    id uuid PRIMARY KEY,
    -- Canonical form (see validation.canonical_email): one account per address.
    email text NOT NULL UNIQUE,
    name text NOT NULL,
    password_hash text NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'confirmed')),
    registered_at timestamptz NOT NULL DEFAULT now(),
    confirmed_at timestamptz
);

-- Only a SHA-256 of each single-use token is kept; the token itself travels in the email.
CREATE TABLE registration.confirmation_tokens (
    token_hash bytea PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES registration.users (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX confirmation_tokens_user_id ON registration.confirmation_tokens (user_id);

-- Transactional outbox: written with the user in one transaction, relayed to SQS, then deleted.
CREATE TABLE registration.outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue text NOT NULL CHECK (queue IN ('email', 'crm')),
    event_id uuid NOT NULL,
    payload jsonb NOT NULL,
    request_id text,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- authz's read-only window on credentials: the only part of this schema another service reads.
CREATE VIEW registration.user_credentials AS
    SELECT id, email, password_hash, status FROM registration.users;

-- In a deployment where authz connects as its own role, grant it that view and nothing else.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'alta_authz') THEN
        GRANT USAGE ON SCHEMA registration TO alta_authz;
        GRANT SELECT ON registration.user_credentials TO alta_authz;
    END IF;
END
$$;
