-- Lookups that must work before a tenant is known: a login by e-mail, an API key by hash, a
-- tenant by slug or SSO domain. Each is a SECURITY DEFINER function returning only what the
-- caller needs, so the application role never reads another tenant's rows directly.
--
-- They run with the rights of the migrating role, which must bypass RLS (a superuser, as in
-- development, or a role with BYPASSRLS).

CREATE FUNCTION auth_login_candidates(p_email text)
RETURNS TABLE (tenant_id uuid, tenant_slug text, user_id uuid, password_hash text, role text,
               disabled boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT u.tenant_id, t.slug, u.id, u.password_hash, m.role, u.disabled_at IS NOT NULL
    FROM users u
    JOIN tenants t ON t.id = u.tenant_id
    JOIN memberships m ON m.tenant_id = u.tenant_id AND m.user_id = u.id
    WHERE u.email = lower(p_email)
$$;

CREATE FUNCTION auth_api_key_lookup(p_sha256 bytea)
RETURNS TABLE (id uuid, tenant_id uuid, scopes text[], expires_at timestamptz,
               revoked_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT k.id, k.tenant_id, k.scopes, k.expires_at, k.revoked_at
    FROM api_keys k WHERE k.key_sha256 = p_sha256
$$;

CREATE FUNCTION auth_tenant_by_slug(p_slug text) RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT id FROM tenants WHERE slug = p_slug
$$;

CREATE FUNCTION auth_tenant_by_sso_domain(p_domain text)
RETURNS TABLE (tenant_id uuid, default_role text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT id, sso_default_role FROM tenants WHERE sso_domain = lower(p_domain)
$$;

REVOKE ALL ON FUNCTION auth_login_candidates(text), auth_api_key_lookup(bytea),
    auth_tenant_by_slug(text), auth_tenant_by_sso_domain(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth_login_candidates(text), auth_api_key_lookup(bytea),
    auth_tenant_by_slug(text), auth_tenant_by_sso_domain(text) TO brain_app;
