-- One row per event we were asked to email: the guard against sending it twice.
CREATE TABLE email_sender.deliveries (
    event_id uuid PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('confirmation', 'already_registered')),
    -- sha256 of the lower-cased address: enough to correlate, without keeping the address.
    recipient_hash text NOT NULL,
    status text NOT NULL CHECK (status IN ('sending', 'sent')),
    -- While status = 'sending', the replica holding the claim owns it until then.
    lease_until timestamptz NOT NULL,
    attempts integer NOT NULL DEFAULT 1,
    sent_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- For purging rows older than the queue's retention, when no redelivery can arrive any more.
CREATE INDEX deliveries_created_at_idx ON email_sender.deliveries (created_at);
