-- Crews: agents that work together on a list of tasks, in order (sequential) or under a
-- manager agent that hands the tasks out through delegation (hierarchical).

CREATE TABLE crews (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- Agent ids, in order; checked against `agents` when written.
    members          uuid[] NOT NULL CHECK (cardinality(members) BETWEEN 1 AND 10),
    process          text NOT NULL CHECK (process IN ('sequential', 'hierarchical')),
    manager_agent_id uuid REFERENCES agents (id) ON DELETE SET NULL,
    -- [{description, expected_output, agent_id?}]
    tasks            jsonb NOT NULL DEFAULT '[]',
    version          integer NOT NULL DEFAULT 1 CHECK (version > 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);
CREATE INDEX crews_tenant ON crews (tenant_id, created_at DESC);

ALTER TABLE crews ENABLE ROW LEVEL SECURITY;
ALTER TABLE crews FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON crews
    USING (tenant_id = brain_current_tenant()) WITH CHECK (tenant_id = brain_current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON crews TO brain_app;

-- A crew run is a task of kind `crew`; its member turns are child tasks.
ALTER TABLE tasks ADD COLUMN crew_id uuid REFERENCES crews (id) ON DELETE SET NULL;
ALTER TABLE tasks ADD COLUMN parent_task_id uuid REFERENCES tasks (id) ON DELETE CASCADE;
CREATE INDEX tasks_parent ON tasks (parent_task_id) WHERE parent_task_id IS NOT NULL;
