-- SSO identities: a provider's `(issuer, sub)` linked to one Brain user. A login is matched by
-- the identity, never by e-mail across tenants; an identity is linked on its first login only
-- to a user of the tenant that claims the e-mail's domain (`tenants.sso_domain`, set by the
-- operator), so an account someone registered with another person's address beforehand is
-- never taken over by — nor handed — that person's SSO login.
CREATE TABLE user_identities (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    issuer     text NOT NULL,
    subject    text NOT NULL,
    -- The e-mail the provider vouched for when the identity was linked (for admins to read).
    email      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, issuer, subject),
    -- One identity per user and issuer.
    UNIQUE (tenant_id, user_id, issuer)
);
CREATE INDEX user_identities_lookup ON user_identities (issuer, subject);

ALTER TABLE user_identities ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_identities FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON user_identities
    USING (tenant_id = brain_current_tenant()) WITH CHECK (tenant_id = brain_current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON user_identities TO brain_app;

-- Before any tenant context: the users an identity is linked to.
CREATE FUNCTION auth_identity_users(p_issuer text, p_subject text)
RETURNS TABLE (tenant_id uuid, user_id uuid, role text, disabled boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT i.tenant_id, i.user_id, m.role, u.disabled_at IS NOT NULL
    FROM user_identities i
    JOIN users u ON u.id = i.user_id
    JOIN memberships m ON m.tenant_id = i.tenant_id AND m.user_id = i.user_id
    WHERE i.issuer = p_issuer AND i.subject = p_subject
$$;
REVOKE ALL ON FUNCTION auth_identity_users(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth_identity_users(text, text) TO brain_app;
