-- The API-key lookup also returns when the key was last used, so verification can skip the
-- (throttled) last-used stamp without a second round trip when it is recent.

DROP FUNCTION auth_api_key_lookup(bytea);

CREATE FUNCTION auth_api_key_lookup(p_sha256 bytea)
RETURNS TABLE (id uuid, tenant_id uuid, scopes text[], expires_at timestamptz,
               revoked_at timestamptz, last_used_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT k.id, k.tenant_id, k.scopes, k.expires_at, k.revoked_at, k.last_used_at
    FROM api_keys k WHERE k.key_sha256 = p_sha256
$$;

REVOKE ALL ON FUNCTION auth_api_key_lookup(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth_api_key_lookup(bytea) TO brain_app;
