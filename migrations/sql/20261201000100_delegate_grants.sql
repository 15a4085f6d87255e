-- Delegation between agents: an agent may ask another agent of its tenant (the tool
-- `ask_<slug>`). Both ends reference the agent together with its tenant, so a grant can never
-- point across tenants even if a query forgot its filter; deleting either agent deletes the
-- grant.

-- The target of the composite foreign keys below.
ALTER TABLE agents ADD CONSTRAINT agents_tenant_id_id_key UNIQUE (tenant_id, id);

CREATE TABLE delegate_grants (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    agent_id          uuid NOT NULL,
    target_agent_id   uuid NOT NULL,
    approval          text NOT NULL DEFAULT 'never' CHECK (approval IN ('never', 'always')),
    max_calls_per_run integer CHECK (max_calls_per_run > 0),
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (agent_id, target_agent_id),
    CONSTRAINT delegate_grants_no_self CHECK (agent_id <> target_agent_id),
    FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, target_agent_id) REFERENCES agents (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX delegate_grants_tenant_agent ON delegate_grants (tenant_id, agent_id);
-- Deleting a target agent finds the grants pointing at it.
CREATE INDEX delegate_grants_tenant_target ON delegate_grants (tenant_id, target_agent_id);

ALTER TABLE delegate_grants ENABLE ROW LEVEL SECURITY;
ALTER TABLE delegate_grants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON delegate_grants
    USING (tenant_id = brain_current_tenant()) WITH CHECK (tenant_id = brain_current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON delegate_grants TO brain_app;
