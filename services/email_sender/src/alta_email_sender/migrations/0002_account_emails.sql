-- The account lifecycle emails (reset link, password changed notice).
ALTER TABLE email_sender.deliveries DROP CONSTRAINT deliveries_kind_check;
ALTER TABLE email_sender.deliveries ADD CONSTRAINT deliveries_kind_check
    CHECK (kind IN ('confirmation', 'already_registered', 'password_reset', 'password_changed'));

-- Whose email it was, for the admin console's delivery state (older rows have none).
ALTER TABLE email_sender.deliveries ADD COLUMN user_id uuid;
CREATE INDEX deliveries_user_id_idx ON email_sender.deliveries (user_id, kind);
