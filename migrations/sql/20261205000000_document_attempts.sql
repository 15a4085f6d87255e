-- Ingestion that keeps dying on one document (a file that crashes or exhausts the reader)
-- must not be picked up forever: every start of its ingestion is counted, and a document
-- found stalled after `p_max_attempts` starts is failed with a reason, its bytes dropped.
-- (Counting starts rather than claims: a document merely waiting for an ingestion slot
-- in a busy process is not held against the file.)
ALTER TABLE documents ADD COLUMN attempts integer NOT NULL DEFAULT 0;

DROP FUNCTION claim_stalled_documents(interval, integer);

-- Finds documents whose ingestion stopped moving (queued or processing, untouched for
-- `p_stale`, bytes still kept) across tenants and claims them by touching `updated_at`, so
-- that another process sweeping at the same time skips them; returns those to resume. Runs
-- with the rights of the migrating role, which must bypass RLS (as for the other lookups).
CREATE FUNCTION claim_stalled_documents(p_stale interval, p_limit integer, p_max_attempts integer)
RETURNS TABLE (tenant_id uuid, document_id uuid)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH stalled AS (
        SELECT s.id FROM documents s
        WHERE s.status IN ('queued', 'processing')
          AND s.updated_at < now() - p_stale
          AND EXISTS (SELECT 1 FROM document_sources src WHERE src.document_id = s.id)
        ORDER BY s.updated_at
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ), claimed AS (
        UPDATE documents d
        SET updated_at = now(),
            status = CASE WHEN d.attempts >= p_max_attempts THEN 'failed' ELSE d.status END,
            chunks = CASE WHEN d.attempts >= p_max_attempts THEN 0 ELSE d.chunks END,
            error = CASE WHEN d.attempts >= p_max_attempts
                THEN format('ingestion stopped %s times without finishing (the file may crash '
                            'or exhaust the reader); it is not retried', d.attempts)
                ELSE d.error END
        FROM stalled
        WHERE d.id = stalled.id
        RETURNING d.tenant_id, d.id, d.status
    ), dropped AS (
        DELETE FROM document_sources src
        USING claimed c
        WHERE src.document_id = c.id AND c.status = 'failed'
    )
    SELECT c.tenant_id, c.id FROM claimed c WHERE c.status <> 'failed'
$$;

REVOKE ALL ON FUNCTION claim_stalled_documents(interval, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION claim_stalled_documents(interval, integer, integer) TO brain_app;
