-- The admin console looks deliveries up by account.
CREATE INDEX deliveries_user_id_idx ON crm_integration.deliveries (user_id);
