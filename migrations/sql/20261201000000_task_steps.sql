-- Durable tasks: one row per step, written by the Temporal activities so `GET /v1/tasks/{id}`
-- reads progress from Postgres (Temporal's history stays the source of truth). Steps are
-- keyed by the position the workflow gave them, so a retried activity rewrites its own row
-- instead of adding another.

CREATE TABLE task_steps (
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    task_id     uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    seq         integer NOT NULL CHECK (seq >= 0),
    kind        text NOT NULL CHECK (kind IN ('llm', 'tool', 'approval', 'action', 'agent_task')),
    status      text NOT NULL CHECK (status IN
        ('running', 'succeeded', 'failed', 'awaiting_approval', 'approved', 'rejected', 'cancelled')),
    -- The model's id for a tool call, or the rule step's; approvals refer to it.
    call_id     text,
    connector   text,
    action      text,
    -- Arguments, outputs, usage, the approver: never secrets.
    detail      jsonb NOT NULL DEFAULT '{}',
    error       text,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    PRIMARY KEY (task_id, seq)
);
CREATE INDEX task_steps_tenant ON task_steps (tenant_id, task_id);

ALTER TABLE task_steps ENABLE ROW LEVEL SECURITY;
ALTER TABLE task_steps FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON task_steps
    USING (tenant_id = brain_current_tenant()) WITH CHECK (tenant_id = brain_current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON task_steps TO brain_app;

-- Steps have their own table now.
ALTER TABLE tasks DROP COLUMN steps;
-- Token usage of the whole task, and what happened to its completion callback.
ALTER TABLE tasks ADD COLUMN usage jsonb;
ALTER TABLE tasks ADD COLUMN callback_status text
    CHECK (callback_status IN ('pending', 'delivered', 'failed'));
ALTER TABLE tasks ADD COLUMN started_at timestamptz;
ALTER TABLE tasks ADD COLUMN finished_at timestamptz;
CREATE INDEX tasks_tenant_status ON tasks (tenant_id, status, created_at DESC);
