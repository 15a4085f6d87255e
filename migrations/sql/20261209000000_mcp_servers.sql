-- MCP servers a tenant registered as tool sources. The auth secret (a bearer token or a header
-- value) is in the secret store at `vault_path`, never here. `tools` is the server's tool list
-- as last fetched (name, description, input schema, annotations).
CREATE TABLE mcp_servers (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    slug         text NOT NULL CHECK (slug ~ '^[a-z0-9][a-z0-9_]{0,39}$'),
    url          text NOT NULL,
    auth_kind    text NOT NULL CHECK (auth_kind IN ('none', 'bearer', 'header')),
    auth_header  text,
    vault_path   text,
    enabled      boolean NOT NULL DEFAULT true,
    tools        jsonb NOT NULL DEFAULT '[]',
    refreshed_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, slug)
);

ALTER TABLE mcp_servers ENABLE ROW LEVEL SECURITY;
ALTER TABLE mcp_servers FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON mcp_servers
    USING (tenant_id = brain_current_tenant()) WITH CHECK (tenant_id = brain_current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON mcp_servers TO brain_app;

-- `auto`: a call that may change something needs approval (an MCP tool not annotated
-- read-only); the default of MCP server grants.
ALTER TABLE tool_grants DROP CONSTRAINT tool_grants_approval_check;
ALTER TABLE tool_grants ADD CONSTRAINT tool_grants_approval_check
    CHECK (approval IN ('never', 'always', 'auto'));
