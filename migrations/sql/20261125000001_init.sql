-- Brain's initial schema: tenants and everything they own.
--
-- Every tenant-owned table carries `tenant_id`, has row-level security enabled AND forced,
-- and one policy comparing `tenant_id` with the session setting `app.tenant_id`.
-- A session that never set it sees no tenant rows at all.

CREATE EXTENSION IF NOT EXISTS vector;

-- The group role the services log in as (directly or through membership). Not a superuser,
-- not BYPASSRLS, owns nothing: RLS always applies to it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'brain_app') THEN
        CREATE ROLE brain_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;

-- The tenant of the current transaction, or NULL when none is set (then policies match nothing).
CREATE FUNCTION brain_current_tenant() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid $$;

CREATE TABLE tenants (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug          text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    default_model text NOT NULL DEFAULT 'local:default',
    -- e-mail domain whose first SSO login joins this tenant (with `sso_default_role`).
    sso_domain       text UNIQUE,
    sso_default_role text NOT NULL DEFAULT 'viewer'
        CHECK (sso_default_role IN ('owner', 'admin', 'editor', 'viewer')),
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email         text NOT NULL CHECK (email = lower(email) AND position('@' in email) > 1),
    display_name  text,
    -- Argon2id PHC string; NULL for users that only sign in through SSO.
    password_hash text,
    disabled_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, email)
);

CREATE TABLE memberships (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('owner', 'admin', 'editor', 'viewer')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id)
);

CREATE TABLE knowledge_collections (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    embedder      text NOT NULL DEFAULT 'local:all-minilm-l6-v2',
    dimension     integer NOT NULL DEFAULT 384 CHECK (dimension > 0),
    chunk_size    integer NOT NULL DEFAULT 1000 CHECK (chunk_size > 0),
    chunk_overlap integer NOT NULL DEFAULT 100 CHECK (chunk_overlap >= 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name),
    CHECK (chunk_overlap < chunk_size)
);

CREATE TABLE agents (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id             uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                  text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    slug                  text NOT NULL CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    role                  text NOT NULL CHECK (length(role) > 0),
    goal                  text NOT NULL CHECK (length(goal) > 0),
    backstory             text NOT NULL DEFAULT '',
    temperature           real NOT NULL DEFAULT 0.7 CHECK (temperature BETWEEN 0.0 AND 2.0),
    model                 text NOT NULL DEFAULT 'local:default' CHECK (model ~ '^[a-z0-9_-]+:.+$'),
    max_tokens            integer NOT NULL DEFAULT 1024 CHECK (max_tokens > 0),
    knowledge_collections uuid[] NOT NULL DEFAULT '{}',
    budget                jsonb NOT NULL DEFAULT '{}',
    -- active | degraded (its supervisor gave up restarting it)
    status                text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'degraded')),
    version               integer NOT NULL DEFAULT 1 CHECK (version > 0),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, slug)
);

CREATE TABLE tool_grants (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    agent_id          uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    connector         text NOT NULL,
    -- `{*}` grants every action of the connector.
    actions           text[] NOT NULL CHECK (cardinality(actions) > 0),
    approval          text NOT NULL DEFAULT 'never' CHECK (approval IN ('never', 'always')),
    max_calls_per_run integer CHECK (max_calls_per_run > 0),
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (agent_id, connector)
);
CREATE INDEX tool_grants_tenant_agent ON tool_grants (tenant_id, agent_id);

CREATE TABLE conversations (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    agent_id   uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    user_id    uuid REFERENCES users (id) ON DELETE SET NULL,
    title      text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conversations_agent ON conversations (tenant_id, agent_id, updated_at DESC);

CREATE TABLE messages (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    role            text NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
    content         text NOT NULL,
    tool_calls      jsonb NOT NULL DEFAULT '[]',
    citations       jsonb NOT NULL DEFAULT '[]',
    usage           jsonb,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX messages_conversation ON messages (conversation_id, created_at);

CREATE TABLE documents (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    collection_id  uuid NOT NULL REFERENCES knowledge_collections (id) ON DELETE CASCADE,
    title          text NOT NULL,
    filename       text NOT NULL,
    media_type     text NOT NULL,
    size_bytes     bigint NOT NULL CHECK (size_bytes >= 0),
    content_sha256 text NOT NULL CHECK (content_sha256 ~ '^[0-9a-f]{64}$'),
    status         text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'processing', 'ready', 'failed')),
    error          text,
    pages          integer NOT NULL DEFAULT 0,
    pages_done     integer NOT NULL DEFAULT 0,
    chunks         integer NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (collection_id, content_sha256)
);
CREATE INDEX documents_collection ON documents (tenant_id, collection_id);

CREATE TABLE chunks (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    collection_id uuid NOT NULL REFERENCES knowledge_collections (id) ON DELETE CASCADE,
    document_id   uuid NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    ordinal       integer NOT NULL CHECK (ordinal >= 0),
    page_start    integer NOT NULL CHECK (page_start >= 1),
    page_end      integer NOT NULL,
    text          text NOT NULL,
    embedding     vector(384) NOT NULL,
    tsv           tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED,
    UNIQUE (document_id, ordinal),
    CHECK (page_end >= page_start)
);
CREATE INDEX chunks_embedding_hnsw ON chunks USING hnsw (embedding vector_cosine_ops);
CREATE INDEX chunks_tsv ON chunks USING gin (tsv);
CREATE INDEX chunks_tenant_collection ON chunks (tenant_id, collection_id);

CREATE TABLE connector_connections (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    connector       text NOT NULL,
    status          text NOT NULL DEFAULT 'connected'
        CHECK (status IN ('connected', 'disconnected', 'error')),
    -- Non-secret credential fields only (e.g. site URL, data centre).
    config          jsonb NOT NULL DEFAULT '{}',
    -- Where the secret fields live in Vault, and which field names are kept there.
    vault_path      text NOT NULL,
    secret_fields   text[] NOT NULL DEFAULT '{}',
    last_checked_at timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, connector)
);

CREATE TABLE webhooks (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    connector         text NOT NULL,
    events            text[] NOT NULL DEFAULT '{}',
    -- The signing secret lives in Vault; this is its path.
    secret_ref        text NOT NULL,
    status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    last_delivery_at  timestamptz,
    deliveries_ok     bigint NOT NULL DEFAULT 0,
    deliveries_failed bigint NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    webhook_id  uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    delivery_id text NOT NULL,
    event       text NOT NULL,
    payload     jsonb NOT NULL,
    status      text NOT NULL DEFAULT 'received'
        CHECK (status IN ('received', 'processed', 'failed')),
    error       text,
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (webhook_id, delivery_id)
);

CREATE TABLE api_keys (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- Shown in listings (`bk_ab12…`); the key itself is never stored, only its SHA-256.
    prefix       text NOT NULL,
    key_sha256   bytea NOT NULL UNIQUE CHECK (length(key_sha256) = 32),
    scopes       text[] NOT NULL DEFAULT '{}',
    created_by   uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz
);

CREATE TABLE rules (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    enabled    boolean NOT NULL DEFAULT true,
    trigger    jsonb NOT NULL,
    steps      jsonb NOT NULL DEFAULT '[]',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tasks (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind            text NOT NULL DEFAULT 'agent' CHECK (kind IN ('agent', 'crew', 'rule')),
    agent_id        uuid REFERENCES agents (id) ON DELETE SET NULL,
    rule_id         uuid REFERENCES rules (id) ON DELETE SET NULL,
    workflow_id     text NOT NULL UNIQUE,
    idempotency_key text,
    status          text NOT NULL DEFAULT 'queued' CHECK (status IN
        ('queued', 'running', 'awaiting_approval', 'succeeded', 'failed', 'cancelled')),
    input           jsonb NOT NULL,
    output          jsonb,
    error           text,
    steps           jsonb NOT NULL DEFAULT '[]',
    callback_url    text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX tasks_tenant_created ON tasks (tenant_id, created_at DESC);

CREATE TABLE audit_events (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- Position in the tenant's hash chain, 1-based, gap-free.
    seq        bigint NOT NULL CHECK (seq > 0),
    at         timestamptz NOT NULL DEFAULT now(),
    actor_kind text NOT NULL CHECK (actor_kind IN ('user', 'api_key', 'agent', 'system')),
    actor_id   text NOT NULL,
    action     text NOT NULL,
    resource   text NOT NULL,
    details    jsonb NOT NULL DEFAULT '{}',
    prev_hash  text NOT NULL,
    hash       text NOT NULL,
    -- Set once the event reached the Redis stream `audit-log` (outbox).
    published_at timestamptz,
    UNIQUE (tenant_id, seq)
);
CREATE INDEX audit_events_tenant_at ON audit_events (tenant_id, at DESC);

CREATE TABLE usage (
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    day               date NOT NULL,
    agent_id          uuid REFERENCES agents (id) ON DELETE CASCADE,
    prompt_tokens     bigint NOT NULL DEFAULT 0,
    completion_tokens bigint NOT NULL DEFAULT 0,
    tool_calls        bigint NOT NULL DEFAULT 0,
    tasks             bigint NOT NULL DEFAULT 0,
    UNIQUE NULLS NOT DISTINCT (tenant_id, day, agent_id)
);

-- Audit events are append-only, whoever asks (only the audit chain's own publisher may
-- stamp `published_at`).
CREATE FUNCTION brain_audit_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND (to_jsonb(NEW) - 'published_at') = (to_jsonb(OLD) - 'published_at') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_events_append_only
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION brain_audit_append_only();

-- Row-level security on every tenant-owned table.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'users', 'memberships', 'knowledge_collections', 'agents', 'tool_grants',
        'conversations', 'messages', 'documents', 'chunks', 'connector_connections',
        'webhooks', 'webhook_deliveries', 'api_keys', 'rules', 'tasks', 'audit_events', 'usage'
    ] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (tenant_id = brain_current_tenant()) '
            'WITH CHECK (tenant_id = brain_current_tenant())', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO brain_app', t);
    END LOOP;
END
$$;

-- A tenant sees (and may create) only its own row.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
    USING (id = brain_current_tenant()) WITH CHECK (id = brain_current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON tenants TO brain_app;

REVOKE UPDATE, DELETE ON audit_events FROM brain_app;
GRANT UPDATE (published_at) ON audit_events TO brain_app;
GRANT EXECUTE ON FUNCTION brain_current_tenant() TO brain_app;
GRANT USAGE ON SCHEMA public TO brain_app;
