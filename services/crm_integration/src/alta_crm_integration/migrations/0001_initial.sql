-- The shared request budget toward the CRM: the next free send slot, on the database's clock
-- so that every replica agrees on it whatever its own clock says.
CREATE TABLE crm_integration.rate_limits (
    name text PRIMARY KEY,
    next_slot_at timestamptz NOT NULL
);

-- One row per event: who is sending it (a lease) and whether the CRM has it.
CREATE TABLE crm_integration.deliveries (
    event_id uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    type text NOT NULL,
    status text NOT NULL CHECK (status IN ('sending', 'synced')),
    -- The claim that holds the lease, so a holder that overran it cannot release a successor's.
    lease_owner uuid,
    lease_until timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    crm_status integer,
    synced_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
