-- The audit outbox: events are committed in Postgres first and published to the Redis
-- stream `audit-log` afterwards, by a publisher that works across tenants. These two
-- SECURITY DEFINER functions are all it may do across tenants: read unpublished events and
-- stamp them published.

CREATE INDEX audit_events_unpublished ON audit_events (at) WHERE published_at IS NULL;

CREATE FUNCTION audit_unpublished(p_limit integer)
RETURNS TABLE (id uuid, tenant_id uuid, seq bigint, at timestamptz, actor_kind text,
               actor_id text, action text, resource text, details jsonb, prev_hash text,
               hash text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT e.id, e.tenant_id, e.seq, e.at, e.actor_kind, e.actor_id, e.action, e.resource,
           e.details, e.prev_hash, e.hash
    FROM audit_events e WHERE e.published_at IS NULL
    ORDER BY e.at, e.seq LIMIT p_limit
$$;

CREATE FUNCTION audit_mark_published(p_ids uuid[]) RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH done AS (
        UPDATE audit_events SET published_at = now()
        WHERE id = ANY(p_ids) AND published_at IS NULL RETURNING 1
    )
    SELECT count(*)::integer FROM done
$$;

REVOKE ALL ON FUNCTION audit_unpublished(integer), audit_mark_published(uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_unpublished(integer), audit_mark_published(uuid[]) TO brain_app;
