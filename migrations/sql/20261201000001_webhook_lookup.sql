-- Inbound deliveries arrive at `/hooks/{id}` with no tenant: the webhook's id is all there is.
-- Like the auth lookups, a SECURITY DEFINER function returns just what the receiver needs to
-- verify the delivery (never the secret, which lives in Vault; only its path), so the
-- application role still cannot read another tenant's rows directly. Everything after the
-- lookup runs inside the tenant the row names, under row-level security.
--
-- It runs with the rights of the migrating role, which must bypass RLS (a superuser, as in
-- development, or a role with BYPASSRLS).

CREATE FUNCTION webhook_lookup(p_id uuid)
RETURNS TABLE (tenant_id uuid, connector text, secret_ref text, status text, events text[])
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT w.tenant_id, w.connector, w.secret_ref, w.status, w.events
    FROM webhooks w WHERE w.id = p_id
$$;

REVOKE ALL ON FUNCTION webhook_lookup(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION webhook_lookup(uuid) TO brain_app;
