-- Idempotency records of connector writes: an idempotency key maps to the first call's
-- result, so a retried side effect (a re-run Temporal activity, a client retry) returns that
-- result instead of writing to the platform twice. Platforms that deduplicate by key
-- themselves (Stripe) get the key in a header instead and have no rows here.

CREATE TABLE connector_idempotency (
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    connector       text NOT NULL,
    action          text NOT NULL,
    idempotency_key text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    -- SHA-256 of the canonical arguments: the same key with other arguments is refused.
    request_sha256  text NOT NULL CHECK (request_sha256 ~ '^[0-9a-f]{64}$'),
    -- pending while the platform call runs; done once its result is recorded.
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done')),
    result          jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    PRIMARY KEY (tenant_id, connector, action, idempotency_key)
);

ALTER TABLE connector_idempotency ENABLE ROW LEVEL SECURITY;
ALTER TABLE connector_idempotency FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON connector_idempotency
    USING (tenant_id = brain_current_tenant()) WITH CHECK (tenant_id = brain_current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON connector_idempotency TO brain_app;
