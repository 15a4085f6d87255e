-- An upload's bytes are kept until its ingestion ends (ready or failed), so a document that
-- was queued or half-processed when its process died is picked up again, not lost.
CREATE TABLE document_sources (
    document_id  uuid PRIMARY KEY REFERENCES documents (id) ON DELETE CASCADE,
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    bytes        bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
-- Bytes are written once and read rarely: keep them out of the TOAST compression attempt.
ALTER TABLE document_sources ALTER COLUMN bytes SET STORAGE EXTERNAL;

ALTER TABLE document_sources ENABLE ROW LEVEL SECURITY;
ALTER TABLE document_sources FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON document_sources
    USING (tenant_id = brain_current_tenant()) WITH CHECK (tenant_id = brain_current_tenant());
GRANT SELECT, INSERT, DELETE ON document_sources TO brain_app;

-- Finds documents whose ingestion stopped moving (queued or processing, untouched for
-- `p_stale`, bytes still kept) across tenants, and claims them by touching `updated_at` so
-- that another process sweeping at the same time skips them. Returns only ids; the caller
-- reads the rest inside the tenant, under row-level security. Runs with the rights of the
-- migrating role, which must bypass RLS (as for the other lookups).
CREATE FUNCTION claim_stalled_documents(p_stale interval, p_limit integer)
RETURNS TABLE (tenant_id uuid, document_id uuid)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE documents d SET updated_at = now()
    WHERE d.id IN (
        SELECT s.id FROM documents s
        WHERE s.status IN ('queued', 'processing')
          AND s.updated_at < now() - p_stale
          AND EXISTS (SELECT 1 FROM document_sources src WHERE src.document_id = s.id)
        ORDER BY s.updated_at
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    )
    RETURNING d.tenant_id, d.id
$$;

REVOKE ALL ON FUNCTION claim_stalled_documents(interval, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION claim_stalled_documents(interval, integer) TO brain_app;
