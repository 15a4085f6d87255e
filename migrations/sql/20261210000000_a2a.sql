-- A2A: the agents a tenant publishes (opt-in per agent; the card and the JSON-RPC endpoint
-- answer only for these), and which durable task answered which A2A message.
CREATE TABLE a2a_published_agents (
    agent_id     uuid PRIMARY KEY REFERENCES agents (id) ON DELETE CASCADE,
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    published_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE a2a_published_agents ENABLE ROW LEVEL SECURITY;
ALTER TABLE a2a_published_agents FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON a2a_published_agents
    USING (tenant_id = brain_current_tenant()) WITH CHECK (tenant_id = brain_current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON a2a_published_agents TO brain_app;

-- `message_id` is the client's: a message sent twice (a retry) answers the task it started.
CREATE TABLE a2a_tasks (
    task_id    uuid PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE,
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    agent_id   uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    context_id text NOT NULL CHECK (length(context_id) BETWEEN 1 AND 200),
    message_id text NOT NULL CHECK (length(message_id) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (agent_id, message_id)
);

ALTER TABLE a2a_tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE a2a_tasks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON a2a_tasks
    USING (tenant_id = brain_current_tenant()) WITH CHECK (tenant_id = brain_current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON a2a_tasks TO brain_app;

-- Remote A2A agents are tool sources like MCP servers (one tool, `ask`; the secret in the
-- secret store, the card's endpoint with the tool); slugs are unique across both.
ALTER TABLE mcp_servers ADD COLUMN protocol text NOT NULL DEFAULT 'mcp'
    CHECK (protocol IN ('mcp', 'a2a'));
