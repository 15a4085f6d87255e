//! The connector service: per-tenant connections (credentials in the secret store, only the
//! reference and non-secret fields in `connector_connections`), live tests, cached resource
//! reads, actions with idempotency, and capability-checked invocation for agents. The
//! gateway's `/v1/connectors…` handlers and the runtime's tool calls are thin wrappers over it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use brain_auth::egress::EgressPolicy;
use brain_auth::secrets::{SecretMap, SecretPath, SecretStore, SecretString};

use crate::mcp::{McpConfig, McpServers};
use brain_auth::{ErrorCode, TenantId};
use chrono::{DateTime, Utc};
use redis::AsyncCommands as _;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ToolError;
use crate::capability::Capability;
use crate::connectors::{self, Credentials, Ctx, Endpoints, ResourceQuery};
use crate::idempotency::{self, Claim, Record};
use crate::oauth::TokenCache;
use crate::registry::{self, ConnectorDef, FieldKind};
use crate::transport::{Redactor, RetryPolicy, Transport};

/// Tunables of the service; `Default` is right for production.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    pub endpoints: Endpoints,
    pub retry: RetryPolicy,
    /// Per-request timeout towards a platform.
    pub request_timeout: Duration,
    /// How long a resource read is served from Redis.
    pub resource_cache_ttl: Duration,
    /// Where requests may go; the default refuses non-public addresses and plain http.
    pub egress: EgressPolicy,
    /// Limits of calls to MCP servers (their egress is `egress`).
    pub mcp_timeout: Duration,
    pub mcp_max_response_bytes: usize,
    pub mcp_max_result_chars: usize,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            endpoints: Endpoints::default(),
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(30),
            resource_cache_ttl: Duration::from_secs(30),
            egress: EgressPolicy::default(),
            mcp_timeout: McpConfig::default().timeout,
            mcp_max_response_bytes: McpConfig::default().max_response_bytes,
            mcp_max_result_chars: McpConfig::default().max_result_chars,
        }
    }
}

/// A tenant's connection state for one connector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    Connected,
    Disconnected,
    Error,
}

impl ConnectionStatus {
    fn parse(s: &str) -> Self {
        match s {
            "connected" => Self::Connected,
            "error" => Self::Error,
            _ => Self::Disconnected,
        }
    }
}

/// A connector as one tenant sees it: the registry entry plus its connection.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ConnectorView {
    #[serde(flatten)]
    pub connector: &'static ConnectorDef,
    pub status: ConnectionStatus,
    /// When the credentials were last checked against the platform; absent if never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_checked_at: Option<DateTime<Utc>>,
    /// Why the connection is in `error` (never contains a credential).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The stored fields: non-secret values as given, secret ones as `"********"`.
    pub fields: BTreeMap<String, String>,
}

const MASK: &str = "********";

#[derive(sqlx::FromRow)]
struct ConnectionRow {
    connector: String,
    status: String,
    config: sqlx::types::Json<BTreeMap<String, String>>,
    vault_path: String,
    secret_fields: Vec<String>,
    last_checked_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
}

pub struct ConnectorService {
    db: PgPool,
    redis: redis::aio::ConnectionManager,
    secrets: Arc<dyn SecretStore>,
    transport: Transport,
    tokens: TokenCache,
    config: ServiceConfig,
    mcp: Arc<McpServers>,
}

impl ConnectorService {
    pub fn new(
        db: PgPool,
        redis: redis::aio::ConnectionManager,
        secrets: Arc<dyn SecretStore>,
        config: ServiceConfig,
    ) -> Result<Self, ToolError> {
        let mcp = McpServers::new(
            db.clone(),
            Arc::clone(&secrets),
            McpConfig {
                egress: config.egress.clone(),
                timeout: config.mcp_timeout,
                max_response_bytes: config.mcp_max_response_bytes,
                max_result_chars: config.mcp_max_result_chars,
            },
        )?;
        Ok(Self {
            transport: Transport::new(
                config.retry.clone(),
                config.request_timeout,
                config.egress.clone(),
            )?,
            tokens: TokenCache::new(redis.clone()),
            db,
            redis,
            secrets,
            config,
            mcp: Arc::new(mcp),
        })
    }

    /// The tenant's MCP servers and their tools (same egress policy and secret store).
    pub fn mcp(&self) -> &Arc<McpServers> {
        &self.mcp
    }

    /// Where this service's requests may go; task callbacks follow the same policy.
    pub fn egress(&self) -> &EgressPolicy {
        &self.config.egress
    }

    /// All 13 connectors with this tenant's status.
    pub async fn list(&self, tenant: TenantId) -> Result<Vec<ConnectorView>, ToolError> {
        let rows = self.rows(tenant, None).await?;
        Ok(registry::connectors()
            .iter()
            .map(|def| view(def, rows.iter().find(|r| r.connector == def.id)))
            .collect())
    }

    /// One connector with this tenant's status and masked fields.
    pub async fn get(&self, tenant: TenantId, id: &str) -> Result<ConnectorView, ToolError> {
        let def = registry::connector(id)?;
        let rows = self.rows(tenant, Some(id)).await?;
        Ok(view(def, rows.first()))
    }

    /// Validates `credentials` against the auth schema and with a live call, then stores the
    /// secret fields in the secret store and the rest in Postgres. Nothing is stored when the
    /// platform refuses.
    pub async fn connect(
        &self,
        tenant: TenantId,
        id: &str,
        credentials: BTreeMap<String, String>,
    ) -> Result<ConnectorView, ToolError> {
        let def = registry::connector(id)?;
        let (config, secrets) = split_credentials(def, credentials)?;
        let creds = merge(def, &config, &secrets);
        // Tokens of earlier credentials must not outlive them; the live check caches a new one.
        self.tokens.forget(tenant, id).await?;
        match self.live_test(tenant, def, &creds).await {
            Ok(_) => {}
            Err(ToolError::Unauthorized { .. }) => {
                return Err(ToolError::InvalidCredentials {
                    connector: id.to_owned(),
                    message: "the platform rejected these credentials".to_owned(),
                });
            }
            Err(e) => return Err(e),
        }
        let path = SecretPath::connector(tenant, id)?;
        self.secrets.put(&path, &secrets).await?;
        let secret_fields: Vec<&String> = secrets.keys().collect();
        let mut tx = self.db.begin().await?;
        brain_migrations::set_tenant(&mut tx, tenant).await?;
        sqlx::query(
            "INSERT INTO connector_connections \
               (tenant_id, connector, status, config, vault_path, secret_fields, last_checked_at, last_error) \
             VALUES ($1, $2, 'connected', $3, $4, $5, now(), NULL) \
             ON CONFLICT (tenant_id, connector) DO UPDATE SET status = 'connected', \
               config = EXCLUDED.config, vault_path = EXCLUDED.vault_path, \
               secret_fields = EXCLUDED.secret_fields, last_checked_at = now(), \
               last_error = NULL, updated_at = now()",
        )
        .bind(tenant.0)
        .bind(id)
        .bind(sqlx::types::Json(&config))
        .bind(path.as_str())
        .bind(secret_fields)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.invalidate_reads(tenant, id).await?;
        tracing::info!(%tenant, connector = id, "connector connected");
        self.get(tenant, id).await
    }

    /// Destroys the stored secret and marks the connector disconnected.
    pub async fn disconnect(&self, tenant: TenantId, id: &str) -> Result<ConnectorView, ToolError> {
        registry::connector(id)?;
        let path = SecretPath::connector(tenant, id)?;
        self.secrets.destroy(&path).await?;
        let mut tx = self.db.begin().await?;
        brain_migrations::set_tenant(&mut tx, tenant).await?;
        sqlx::query(
            "UPDATE connector_connections SET status = 'disconnected', config = '{}', \
               secret_fields = '{}', last_error = NULL, updated_at = now() \
             WHERE tenant_id = $1 AND connector = $2",
        )
        .bind(tenant.0)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.tokens.forget(tenant, id).await?;
        self.invalidate_reads(tenant, id).await?;
        tracing::info!(%tenant, connector = id, "connector disconnected");
        self.get(tenant, id).await
    }

    /// A live call with the stored credentials; records the outcome as the status.
    pub async fn test(&self, tenant: TenantId, id: &str) -> Result<ConnectorView, ToolError> {
        let def = registry::connector(id)?;
        let (creds, _) = self.credentials(tenant, def).await?;
        let outcome = self.live_test(tenant, def, &creds).await;
        self.record_outcome(tenant, id, &outcome).await?;
        outcome?;
        self.get(tenant, id).await
    }

    /// Reads a resource (`posts`, `Leads`, …), served from Redis for a short while.
    pub async fn resource(
        &self,
        tenant: TenantId,
        id: &str,
        resource: &str,
        query: &ResourceQuery,
    ) -> Result<Value, ToolError> {
        let def = registry::connector(id)?;
        if !def.has_resource(resource) {
            return Err(ToolError::UnknownResource {
                connector: id.to_owned(),
                resource: resource.to_owned(),
            });
        }
        let (creds, status) = self.credentials(tenant, def).await?;
        let mut redis = self.redis.clone();
        let generation: Option<u64> = redis.get(generation_key(tenant, id)).await?;
        let key = resource_key(tenant, id, generation.unwrap_or(0), resource, query);
        let cached: Option<String> = redis.get(&key).await?;
        if let Some(hit) = cached.and_then(|s| serde_json::from_str::<Value>(&s).ok()) {
            return Ok(hit);
        }
        let ctx = self.ctx(tenant, def, &creds);
        let outcome = connectors::dispatch_resource(&ctx, resource, query).await;
        self.note_outcome(tenant, id, status, &outcome).await?;
        let value = outcome?;
        let ttl = self.config.resource_cache_ttl.as_secs();
        if ttl > 0 {
            let _: () = redis.set_ex(&key, value.to_string(), ttl).await?;
        }
        Ok(value)
    }

    /// Runs an action for an admin (no grant involved). Arguments are checked against the
    /// action's JSON Schema; side-effecting actions honour `idempotency_key`.
    pub async fn action(
        &self,
        tenant: TenantId,
        id: &str,
        action: &str,
        args: Value,
        idempotency_key: Option<&str>,
    ) -> Result<Value, ToolError> {
        self.action_attempt(tenant, id, action, args, idempotency_key, false)
            .await
    }

    /// [`Self::action`] for a durable step that may be a retry; see [`Self::invoke_attempt`].
    pub async fn action_attempt(
        &self,
        tenant: TenantId,
        id: &str,
        action: &str,
        args: Value,
        idempotency_key: Option<&str>,
        earlier_attempts_ended: bool,
    ) -> Result<Value, ToolError> {
        let def = registry::connector(id)?;
        self.execute(
            tenant,
            def,
            action,
            args,
            idempotency_key,
            earlier_attempts_ended,
        )
        .await
    }

    /// Every capability of an agent, minted from its stored grants.
    pub async fn capabilities(
        &self,
        tenant: TenantId,
        agent_id: Uuid,
    ) -> Result<Vec<Capability>, ToolError> {
        Capability::mint_for_agent(&self.db, tenant, agent_id).await
    }

    /// Runs `action` through a capability: refused with `action_not_granted` when the handle
    /// does not cover it and with `grant_revoked` when the stored grant no longer does. Every
    /// call the grant allows is written to the audit trail (argument names, never values).
    pub async fn invoke(
        &self,
        cap: &Capability,
        action: &str,
        args: Value,
        idempotency_key: Option<&str>,
    ) -> Result<Value, ToolError> {
        self.invoke_attempt(cap, action, args, idempotency_key, false)
            .await
    }

    /// [`Self::invoke`] for a durable step that may be a retry. `earlier_attempts_ended` says
    /// that whoever used `idempotency_key` before is gone (Temporal schedules a retry only
    /// after the previous attempt failed or timed out), so a claim it left pending is settled
    /// by asking the platform whether the write happened instead of writing again; a platform
    /// that cannot tell gets `ambiguous_write` and no second write.
    pub async fn invoke_attempt(
        &self,
        cap: &Capability,
        action: &str,
        args: Value,
        idempotency_key: Option<&str>,
        earlier_attempts_ended: bool,
    ) -> Result<Value, ToolError> {
        if !cap.allows(action) {
            return Err(ToolError::ActionNotGranted {
                connector: cap.connector().to_owned(),
                action: action.to_owned(),
            });
        }
        cap.recheck(&self.db, action).await?;
        tracing::info!(tenant = %cap.tenant(), agent_id = %cap.agent_id(), connector = cap.connector(), action, "tool call");
        let arg_names: Vec<String> = args
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let outcome = self
            .execute(
                cap.tenant(),
                cap.def(),
                action,
                args,
                idempotency_key,
                earlier_attempts_ended,
            )
            .await;
        let details = serde_json::json!({
            "args": arg_names,
            "outcome": match &outcome { Ok(_) => "ok", Err(e) => e.code().as_str() },
            "idempotency_key": idempotency_key,
        });
        self.audit_call(cap, action, details).await?;
        outcome
    }

    async fn audit_call(
        &self,
        cap: &Capability,
        action: &str,
        details: Value,
    ) -> Result<(), ToolError> {
        let mut tx = self.db.begin().await?;
        brain_migrations::set_tenant(&mut tx, cap.tenant()).await?;
        let event = brain_auth::audit::AuditEvent {
            actor_kind: "agent",
            actor_id: cap.agent_id().to_string(),
            action: "tool.call",
            resource: format!("connectors/{}/actions/{action}", cap.connector()),
            details,
        };
        brain_auth::audit::append(&mut tx, cap.tenant(), event)
            .await
            .map_err(|e| ToolError::Internal(format!("audit: {e}")))?;
        tx.commit().await?;
        Ok(())
    }

    async fn execute(
        &self,
        tenant: TenantId,
        def: &'static ConnectorDef,
        action: &str,
        args: Value,
        idempotency_key: Option<&str>,
        earlier_attempts_ended: bool,
    ) -> Result<Value, ToolError> {
        let spec = def.action(action).ok_or_else(|| ToolError::UnknownAction {
            connector: def.id.to_owned(),
            action: action.to_owned(),
        })?;
        // A model sometimes sends `null` for "no arguments".
        let args = if args.is_null() {
            Value::Object(Default::default())
        } else {
            args
        };
        registry::validate_args(def.id, action, &args)?;
        if let Some(key) = idempotency_key {
            // Keys travel as HTTP headers (Stripe) and sit in a bounded column.
            let valid = (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic());
            if !valid {
                return Err(ToolError::InvalidArguments {
                    tool: format!("{}.{action}", def.id),
                    message: "the idempotency key must be 1 to 255 visible ASCII characters"
                        .to_owned(),
                });
            }
        }
        let Value::Object(map) = &args else {
            return Err(ToolError::InvalidArguments {
                tool: format!("{}.{action}", def.id),
                message: "arguments must be a JSON object".to_owned(),
            });
        };
        let (creds, status) = self.credentials(tenant, def).await?;
        let ctx = self.ctx(tenant, def, &creds);

        let record = match idempotency_key {
            Some(key) if spec.side_effect && !connectors::platform_deduplicates(def.id) => {
                let rec = Record {
                    tenant,
                    connector: def.id,
                    action,
                    key,
                };
                let hash = idempotency::request_hash(&args);
                match idempotency::claim(&self.db, &rec, &hash, earlier_attempts_ended).await? {
                    Claim::Done(result) => return Ok(result),
                    Claim::Fresh => Some(rec),
                    Claim::Abandoned => match connectors::reconcile(&ctx, action, map).await {
                        Ok(Some(result)) => {
                            idempotency::complete(&self.db, &rec, &result).await?;
                            return Ok(result);
                        }
                        Ok(None) => Some(rec),
                        // Unsettled: the claim stays, so no later attempt writes either.
                        Err(e) => return Err(e),
                    },
                }
            }
            _ => None,
        };
        let outcome = connectors::dispatch_action(&ctx, action, map, idempotency_key).await;
        self.note_outcome(tenant, def.id, status, &outcome).await?;
        if spec.side_effect && outcome.is_ok() {
            self.invalidate_reads(tenant, def.id).await?;
        }
        if let Some(rec) = &record {
            match &outcome {
                Ok(result) => idempotency::complete(&self.db, rec, result).await?,
                // The platform certainly did not write: the key may be used again.
                Err(e) if definitely_not_written(e) => idempotency::release(&self.db, rec).await?,
                // Unknown whether it wrote (timeout, 5xx): keep the claim so a retry does not
                // write twice; it expires after a while.
                Err(_) => {}
            }
        }
        outcome
    }

    /// Makes every cached read of this connector stale.
    async fn invalidate_reads(&self, tenant: TenantId, id: &str) -> Result<(), ToolError> {
        let mut redis = self.redis.clone();
        let _: u64 = redis.incr(generation_key(tenant, id), 1u64).await?;
        Ok(())
    }

    async fn live_test(
        &self,
        tenant: TenantId,
        def: &'static ConnectorDef,
        creds: &Credentials,
    ) -> Result<Value, ToolError> {
        let ctx = self.ctx(tenant, def, creds);
        connectors::dispatch_test(&ctx).await
    }

    fn ctx<'a>(
        &'a self,
        tenant: TenantId,
        def: &'static ConnectorDef,
        creds: &'a Credentials,
    ) -> Ctx<'a> {
        Ctx {
            tenant,
            def,
            creds,
            transport: &self.transport,
            endpoints: &self.config.endpoints,
            tokens: &self.tokens,
            redact: creds.redactor(),
        }
    }

    async fn rows(
        &self,
        tenant: TenantId,
        id: Option<&str>,
    ) -> Result<Vec<ConnectionRow>, ToolError> {
        let mut tx = self.db.begin().await?;
        brain_migrations::set_tenant(&mut tx, tenant).await?;
        let rows: Vec<ConnectionRow> = sqlx::query_as(
            "SELECT connector, status, config, vault_path, secret_fields, last_checked_at, last_error \
             FROM connector_connections WHERE tenant_id = $1 AND ($2::text IS NULL OR connector = $2)",
        )
        .bind(tenant.0)
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// The stored credentials of a connected (or erroring) connector, with its status.
    async fn credentials(
        &self,
        tenant: TenantId,
        def: &'static ConnectorDef,
    ) -> Result<(Credentials, ConnectionStatus), ToolError> {
        let rows = self.rows(tenant, Some(def.id)).await?;
        let row = rows
            .into_iter()
            .find(|r| r.status != "disconnected")
            .ok_or_else(|| ToolError::NotConnected(def.id.to_owned()))?;
        let path = SecretPath::parse(&row.vault_path)?;
        let secrets = self
            .secrets
            .get(&path)
            .await?
            .ok_or_else(|| ToolError::NotConnected(def.id.to_owned()))?;
        let status = ConnectionStatus::parse(&row.status);
        Ok((merge(def, &row.config.0, &secrets), status))
    }

    /// A 401 marks the connection `error` (and drops cached tokens); a success on a connection
    /// in `error` proves the credentials again and clears it. Other outcomes say nothing about
    /// the credentials.
    async fn note_outcome<T>(
        &self,
        tenant: TenantId,
        id: &str,
        before: ConnectionStatus,
        outcome: &Result<T, ToolError>,
    ) -> Result<(), ToolError> {
        let recovered = outcome.is_ok() && before == ConnectionStatus::Error;
        if recovered || matches!(outcome, Err(ToolError::Unauthorized { .. })) {
            self.record_outcome(tenant, id, outcome).await?;
        }
        Ok(())
    }

    async fn record_outcome<T>(
        &self,
        tenant: TenantId,
        id: &str,
        outcome: &Result<T, ToolError>,
    ) -> Result<(), ToolError> {
        let (status, error) = match outcome {
            Ok(_) => ("connected", None),
            Err(e @ ToolError::Unauthorized { .. }) => ("error", Some(e.to_string())),
            // Unreachable or rate-limited platforms say nothing about the credentials.
            Err(_) => return Ok(()),
        };
        if status == "error" && connectors::uses_oauth(id) {
            self.tokens.forget(tenant, id).await?;
        }
        let mut tx = self.db.begin().await?;
        brain_migrations::set_tenant(&mut tx, tenant).await?;
        sqlx::query(
            "UPDATE connector_connections SET status = $3, last_error = $4, last_checked_at = now(), \
               updated_at = now() WHERE tenant_id = $1 AND connector = $2 AND status <> 'disconnected'",
        )
        .bind(tenant.0)
        .bind(id)
        .bind(status)
        .bind(error)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if status == "error" {
            tracing::warn!(%tenant, connector = id, "connector credentials rejected; marked error");
        }
        Ok(())
    }
}

fn definitely_not_written(e: &ToolError) -> bool {
    match e {
        ToolError::Platform { status, .. } => *status < 500,
        ToolError::Unreachable { .. } | ToolError::BadResponse { .. } => false,
        _ => true,
    }
}

impl Credentials {
    fn redactor(&self) -> Redactor {
        Redactor::new(self.secret_values())
    }
}

fn view(def: &'static ConnectorDef, row: Option<&ConnectionRow>) -> ConnectorView {
    let Some(row) = row else {
        return ConnectorView {
            connector: def,
            status: ConnectionStatus::Disconnected,
            last_checked_at: None,
            last_error: None,
            fields: BTreeMap::new(),
        };
    };
    let mut fields = row.config.0.clone();
    for f in &row.secret_fields {
        fields.insert(f.clone(), MASK.to_owned());
    }
    ConnectorView {
        connector: def,
        status: ConnectionStatus::parse(&row.status),
        last_checked_at: row.last_checked_at,
        last_error: row.last_error.clone(),
        fields,
    }
}

/// Checks the submitted fields against the auth schema and splits them into the non-secret
/// config (for Postgres) and the secrets (for the secret store). Errors name the field.
fn split_credentials(
    def: &'static ConnectorDef,
    mut submitted: BTreeMap<String, String>,
) -> Result<(BTreeMap<String, String>, SecretMap), ToolError> {
    let bad = |message: String| ToolError::InvalidCredentials {
        connector: def.id.to_owned(),
        message,
    };
    if let Some(unknown) = submitted
        .keys()
        .find(|k| !def.auth_schema.iter().any(|f| f.field == k.as_str()))
    {
        return Err(bad(format!("unknown field `{unknown}`")));
    }
    let mut config = BTreeMap::new();
    let mut secrets = SecretMap::new();
    for field in &def.auth_schema {
        let value = submitted
            .remove(field.field)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty());
        let Some(value) = value else {
            if field.required {
                return Err(bad(format!("`{}` is required", field.field)));
            }
            continue;
        };
        match field.kind {
            FieldKind::Select => {
                let allowed = field.options.as_deref().unwrap_or_default();
                if !allowed.contains(&value.as_str()) {
                    return Err(bad(format!(
                        "`{}` must be one of {}",
                        field.field,
                        allowed.join(", ")
                    )));
                }
            }
            FieldKind::Url => {
                let ok = reqwest::Url::parse(&value)
                    .is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
                if !ok {
                    return Err(bad(format!("`{}` must be an http(s) URL", field.field)));
                }
            }
            FieldKind::String | FieldKind::Secret => {}
        }
        if field.kind == FieldKind::Secret {
            secrets.insert(field.field.to_owned(), SecretString::new(value));
        } else {
            config.insert(field.field.to_owned(), value);
        }
    }
    Ok((config, secrets))
}

fn merge(
    def: &'static ConnectorDef,
    config: &BTreeMap<String, String>,
    secrets: &SecretMap,
) -> Credentials {
    let mut values: BTreeMap<String, SecretString> = config
        .iter()
        .map(|(k, v)| (k.clone(), SecretString::new(v.clone())))
        .collect();
    values.extend(secrets.iter().map(|(k, v)| (k.clone(), v.clone())));
    Credentials::new(def.id, values, secrets.keys().cloned().collect())
}

/// A counter bumped by every write, connect and disconnect of a tenant's connector; it is
/// part of every cached read's key, so a write is visible to the next read at once.
fn generation_key(tenant: TenantId, id: &str) -> String {
    format!("brain:tools:resource-gen:{tenant}:{id}")
}

fn resource_key(
    tenant: TenantId,
    id: &str,
    generation: u64,
    resource: &str,
    query: &ResourceQuery,
) -> String {
    let canonical = serde_json::to_string(query).unwrap_or_default();
    let digest = Sha256::digest(canonical.as_bytes());
    let fp: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("brain:tools:resource:{tenant}:{id}:{generation}:{resource}:{fp}")
}
