-- Rules are listed newest first per tenant, and looked up by trigger event for every incoming
-- connector event; only enabled rules fire, so the event index skips disabled ones.
CREATE INDEX rules_tenant_created ON rules (tenant_id, created_at DESC);
CREATE INDEX rules_tenant_event ON rules (tenant_id, (trigger->>'event')) WHERE enabled;
