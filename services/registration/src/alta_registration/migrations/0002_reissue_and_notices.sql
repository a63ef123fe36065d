-- A sign-up again while the account is pending carries its own password: confirming that
-- link sets it, so whoever reads the mailbox decides the password, not whoever signed up first.
ALTER TABLE registration.confirmation_tokens ADD COLUMN password_hash text;

-- When the owner was last emailed about a repeated sign-up (throttles those emails).
ALTER TABLE registration.users ADD COLUMN last_notice_at timestamptz;
