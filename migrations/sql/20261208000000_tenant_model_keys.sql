-- Tenants' own model provider keys (BYOK). The key itself is in the secret store at
-- `vault_path`; this row says where, shows a masked hint, and when the key last passed a
-- live check. `base_url` and `organization` are not secret and are kept here as well as
-- beside the key, so the settings page can show them.
CREATE TABLE tenant_model_keys (
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    provider     text NOT NULL,
    vault_path   text NOT NULL,
    key_hint     text NOT NULL,
    base_url     text,
    organization text,
    verified_at  timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, provider)
);

ALTER TABLE tenant_model_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_model_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_model_keys
    USING (tenant_id = brain_current_tenant()) WITH CHECK (tenant_id = brain_current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_model_keys TO brain_app;
