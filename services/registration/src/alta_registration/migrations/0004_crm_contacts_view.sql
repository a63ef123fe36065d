-- crm_integration's read-only window on registrations, for its reconciliation command: who
-- signed up and their state, never a password hash or a token.
CREATE VIEW registration.crm_contacts AS
    SELECT id, email, name, status, registered_at, confirmed_at FROM registration.users;

-- In a deployment where crm_integration connects as its own role, grant it that view only.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'alta_crm_integration') THEN
        GRANT USAGE ON SCHEMA registration TO alta_crm_integration;
        GRANT SELECT ON registration.crm_contacts TO alta_crm_integration;
    END IF;
END
$$;
