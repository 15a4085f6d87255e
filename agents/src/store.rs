//! The agent store: agents, their tool grants and their delegate grants in Postgres, always
//! inside the tenant's row-level-security context. Every change bumps `version`.

use std::collections::HashMap;
use std::sync::Arc;

use brain_auth::TenantId;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::{AgentError, FieldError};
use crate::spec::{
    AgentFields, AgentHealth, AgentId, AgentPatch, AgentSpec, Approval, Budget, ConnectorCatalog,
    DelegateGrant, DelegateTarget, ModelRef, NewAgent, NonEmptyText, Slug, Temperature, ToolGrant,
    validate_delegates, validate_grants,
};

/// Reads and writes agents for the API and the runtime.
#[derive(Clone)]
pub struct AgentStore {
    pool: PgPool,
    default_model: String,
    known_providers: Option<Vec<String>>,
    catalog: Option<Arc<dyn ConnectorCatalog>>,
}

#[derive(sqlx::FromRow)]
struct AgentRow {
    id: Uuid,
    tenant_id: Uuid,
    name: String,
    slug: String,
    role: String,
    goal: String,
    backstory: String,
    temperature: f32,
    model: String,
    fallback_models: Vec<String>,
    max_tokens: i32,
    knowledge_collections: Vec<Uuid>,
    budget: Json<Budget>,
    status: String,
    version: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct GrantRow {
    agent_id: Uuid,
    connector: String,
    actions: Vec<String>,
    approval: String,
    max_calls_per_run: Option<i32>,
}

#[derive(sqlx::FromRow)]
struct DelegateRow {
    agent_id: Uuid,
    target_agent_id: Uuid,
    approval: String,
    max_calls_per_run: Option<i32>,
}

#[derive(sqlx::FromRow)]
struct DelegateTargetRow {
    target_agent_id: Uuid,
    approval: String,
    max_calls_per_run: Option<i32>,
    slug: String,
    name: String,
    role: String,
    goal: String,
}

const AGENT_COLUMNS: &str = "id, tenant_id, name, slug, role, goal, backstory, temperature, \
     model, fallback_models, max_tokens, knowledge_collections, budget, status, version, created_at, updated_at";

fn model_names(models: &[ModelRef]) -> Vec<String> {
    models.iter().map(ToString::to_string).collect()
}

fn approval_from_row(approval: &str) -> Approval {
    match approval {
        "never" => Approval::Never,
        "auto" => Approval::Auto,
        _ => Approval::Always,
    }
}

fn grant_from_row(row: GrantRow) -> ToolGrant {
    ToolGrant {
        connector: row.connector,
        actions: row.actions,
        approval: approval_from_row(&row.approval),
        max_calls_per_run: row.max_calls_per_run.and_then(|n| u32::try_from(n).ok()),
    }
}

fn delegate_from_row(row: DelegateRow) -> DelegateGrant {
    DelegateGrant {
        agent: AgentId(row.target_agent_id),
        approval: approval_from_row(&row.approval),
        max_calls_per_run: row.max_calls_per_run.and_then(|n| u32::try_from(n).ok()),
    }
}

fn spec_from_row(
    row: AgentRow,
    tools: Vec<ToolGrant>,
    delegates: Vec<DelegateGrant>,
) -> Result<AgentSpec, AgentError> {
    // Rows passed the same checks (and the table's CHECKs) on the way in.
    Ok(AgentSpec {
        id: AgentId(row.id),
        tenant_id: TenantId(row.tenant_id),
        name: row.name,
        slug: Slug::new(row.slug)?,
        role: NonEmptyText::new("role", row.role)?,
        goal: NonEmptyText::new("goal", row.goal)?,
        backstory: row.backstory,
        temperature: Temperature::new(row.temperature)?,
        model: row.model.parse()?,
        fallback_models: row
            .fallback_models
            .iter()
            .map(|m| m.parse())
            .collect::<Result<_, _>>()?,
        max_tokens: u32::try_from(row.max_tokens).unwrap_or(1),
        knowledge_collections: row.knowledge_collections,
        tools,
        delegates,
        budget: row.budget.0,
        status: AgentHealth::parse(&row.status),
        version: row.version,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

fn is_slug_conflict(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation()
        && db.constraint().is_some_and(|c| c.contains("slug")))
}

impl AgentStore {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            default_model: "local:default".to_owned(),
            known_providers: None,
            catalog: None,
        }
    }

    /// The model new agents get when they name none.
    pub fn with_default_model(mut self, model: impl Into<String>) -> Self {
        self.default_model = model.into();
        self
    }

    /// Restricts `model` to these providers (the configured ones), else any is accepted.
    pub fn with_known_providers(mut self, providers: Vec<String>) -> Self {
        self.known_providers = Some(providers);
        self
    }

    /// Checks grants against this catalogue of connectors and actions.
    pub fn with_catalog(mut self, catalog: Arc<dyn ConnectorCatalog>) -> Self {
        self.catalog = Some(catalog);
        self
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn check_known(&self, fields: &AgentFields) -> Result<(), FieldError> {
        if let Some(known) = &self.known_providers {
            let models = std::iter::once(("model", &fields.model)).chain(
                fields
                    .fallback_models
                    .iter()
                    .map(|m| ("fallback_models", m)),
            );
            for (field, model) in models {
                if !known.iter().any(|p| p == model.provider()) {
                    return Err(FieldError::new(
                        field,
                        format!(
                            "unknown model provider `{}` (configured: {})",
                            model.provider(),
                            known.join(", ")
                        ),
                    ));
                }
            }
        }
        if let Some(catalog) = &self.catalog {
            // MCP server grants are checked against the tenant's servers when stored.
            for grant in fields.tools.iter().filter(|g| g.mcp_server().is_none()) {
                let Some(actions) = catalog.actions(&grant.connector) else {
                    return Err(FieldError::new(
                        "tools",
                        format!("unknown connector `{}`", grant.connector),
                    ));
                };
                if let Some(bad) = grant
                    .actions
                    .iter()
                    .find(|a| *a != "*" && !actions.contains(a))
                {
                    return Err(FieldError::new(
                        "tools",
                        format!("connector `{}` has no action `{bad}`", grant.connector),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Creates an agent; without a `model` it gets the tenant's default model
    /// (`tenants.default_model`), else the store's.
    pub async fn create(&self, tenant: TenantId, input: NewAgent) -> Result<AgentSpec, AgentError> {
        let mut tx = self.pool.begin().await?;
        brain_migrations::set_tenant(&mut tx, tenant).await?;
        let tenant_default: Option<String> =
            sqlx::query_scalar("SELECT default_model FROM tenants WHERE id = $1")
                .bind(tenant.0)
                .fetch_optional(&mut *tx)
                .await?;
        let fields = input.validate(tenant_default.as_deref().unwrap_or(&self.default_model))?;
        self.check_known(&fields)?;
        let id = Uuid::now_v7();
        let inserted = sqlx::query(
            "INSERT INTO agents (id, tenant_id, name, slug, role, goal, backstory, temperature, \
             model, max_tokens, knowledge_collections, budget, fallback_models) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(id)
        .bind(tenant.0)
        .bind(&fields.name)
        .bind(fields.slug.as_str())
        .bind(fields.role.as_str())
        .bind(fields.goal.as_str())
        .bind(&fields.backstory)
        .bind(fields.temperature.get())
        .bind(fields.model.to_string())
        .bind(i32::try_from(fields.max_tokens).unwrap_or(i32::MAX))
        .bind(&fields.knowledge_collections)
        .bind(Json(&fields.budget))
        .bind(model_names(&fields.fallback_models))
        .execute(&mut *tx)
        .await;
        if let Err(e) = inserted {
            return Err(if is_slug_conflict(&e) {
                AgentError::SlugTaken(fields.slug.to_string())
            } else {
                e.into()
            });
        }
        insert_grants(&mut tx, tenant, id, &fields.tools).await?;
        insert_delegates(&mut tx, tenant, AgentId(id), &fields.delegates).await?;
        let spec = fetch(&mut tx, AgentId(id)).await?;
        tx.commit().await?;
        Ok(spec)
    }

    pub async fn get(&self, tenant: TenantId, id: AgentId) -> Result<AgentSpec, AgentError> {
        let mut tx = self.pool.begin().await?;
        brain_migrations::set_tenant(&mut tx, tenant).await?;
        let spec = fetch(&mut tx, id).await?;
        tx.commit().await?;
        Ok(spec)
    }

    pub async fn get_by_slug(&self, tenant: TenantId, slug: &str) -> Result<AgentSpec, AgentError> {
        let mut tx = self.pool.begin().await?;
        brain_migrations::set_tenant(&mut tx, tenant).await?;
        let id: Option<Uuid> =
            sqlx::query_scalar("SELECT id FROM agents WHERE tenant_id = $1 AND slug = $2")
                .bind(tenant.0)
                .bind(slug)
                .fetch_optional(&mut *tx)
                .await?;
        let spec = fetch(&mut tx, AgentId(id.ok_or(AgentError::NotFound)?)).await?;
        tx.commit().await?;
        Ok(spec)
    }

    pub async fn list(&self, tenant: TenantId) -> Result<Vec<AgentSpec>, AgentError> {
        let mut tx = self.pool.begin().await?;
        brain_migrations::set_tenant(&mut tx, tenant).await?;
        let rows: Vec<AgentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {AGENT_COLUMNS} FROM agents WHERE tenant_id = $1 ORDER BY created_at, id"
        )))
        .bind(tenant.0)
        .fetch_all(&mut *tx)
        .await?;
        let grants: Vec<GrantRow> = sqlx::query_as(
            "SELECT agent_id, connector, actions, approval, max_calls_per_run FROM tool_grants \
             WHERE tenant_id = $1 ORDER BY connector",
        )
        .bind(tenant.0)
        .fetch_all(&mut *tx)
        .await?;
        let delegates: Vec<DelegateRow> = sqlx::query_as(
            "SELECT agent_id, target_agent_id, approval, max_calls_per_run FROM delegate_grants \
             WHERE tenant_id = $1 ORDER BY id",
        )
        .bind(tenant.0)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut by_agent: HashMap<Uuid, Vec<ToolGrant>> = HashMap::new();
        for g in grants {
            by_agent
                .entry(g.agent_id)
                .or_default()
                .push(grant_from_row(g));
        }
        let mut delegates_by_agent: HashMap<Uuid, Vec<DelegateGrant>> = HashMap::new();
        for d in delegates {
            delegates_by_agent
                .entry(d.agent_id)
                .or_default()
                .push(delegate_from_row(d));
        }
        rows.into_iter()
            .map(|row| {
                let tools = by_agent.remove(&row.id).unwrap_or_default();
                let delegates = delegates_by_agent.remove(&row.id).unwrap_or_default();
                spec_from_row(row, tools, delegates)
            })
            .collect()
    }

    /// Applies `patch`; `expected_version` (when given) guards against lost updates.
    pub async fn update(
        &self,
        tenant: TenantId,
        id: AgentId,
        patch: AgentPatch,
        expected_version: Option<i32>,
    ) -> Result<AgentSpec, AgentError> {
        let mut tx = self.pool.begin().await?;
        brain_migrations::set_tenant(&mut tx, tenant).await?;
        lock(&mut tx, id).await?;
        let current = fetch(&mut tx, id).await?;
        if let Some(expected) = expected_version
            && expected != current.version
        {
            return Err(AgentError::VersionConflict { expected });
        }
        let tools_changed = patch.tools.is_some();
        let delegates_changed = patch.delegates.is_some();
        let fields = patch.apply(&current)?;
        self.check_known(&fields)?;
        let updated = sqlx::query(
            "UPDATE agents SET name = $2, slug = $3, role = $4, goal = $5, backstory = $6, \
             temperature = $7, model = $8, max_tokens = $9, knowledge_collections = $10, \
             budget = $11, fallback_models = $12, version = version + 1, updated_at = now() \
             WHERE id = $1",
        )
        .bind(id.0)
        .bind(&fields.name)
        .bind(fields.slug.as_str())
        .bind(fields.role.as_str())
        .bind(fields.goal.as_str())
        .bind(&fields.backstory)
        .bind(fields.temperature.get())
        .bind(fields.model.to_string())
        .bind(i32::try_from(fields.max_tokens).unwrap_or(i32::MAX))
        .bind(&fields.knowledge_collections)
        .bind(Json(&fields.budget))
        .bind(model_names(&fields.fallback_models))
        .execute(&mut *tx)
        .await;
        if let Err(e) = updated {
            return Err(if is_slug_conflict(&e) {
                AgentError::SlugTaken(fields.slug.to_string())
            } else {
                e.into()
            });
        }
        if tools_changed {
            sqlx::query("DELETE FROM tool_grants WHERE agent_id = $1")
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
            insert_grants(&mut tx, tenant, id.0, &fields.tools).await?;
        }
        if delegates_changed {
            sqlx::query("DELETE FROM delegate_grants WHERE agent_id = $1")
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
            insert_delegates(&mut tx, tenant, id, &fields.delegates).await?;
        }
        let spec = fetch(&mut tx, id).await?;
        tx.commit().await?;
        Ok(spec)
    }

    /// Replaces the agent's grants (`PUT /v1/agents/{id}/tools`).
    pub async fn replace_tools(
        &self,
        tenant: TenantId,
        id: AgentId,
        tools: Vec<ToolGrant>,
        expected_version: Option<i32>,
    ) -> Result<AgentSpec, AgentError> {
        let tools = validate_grants(tools)?;
        let patch = AgentPatch {
            tools: Some(tools),
            ..AgentPatch::default()
        };
        self.update(tenant, id, patch, expected_version).await
    }

    /// Replaces the agent's delegate grants (`PUT /v1/agents/{id}/delegates`); bumps `version`.
    pub async fn replace_delegates(
        &self,
        tenant: TenantId,
        id: AgentId,
        delegates: Vec<DelegateGrant>,
        expected_version: Option<i32>,
    ) -> Result<AgentSpec, AgentError> {
        let patch = AgentPatch {
            delegates: Some(validate_delegates(delegates)?),
            ..AgentPatch::default()
        };
        self.update(tenant, id, patch, expected_version).await
    }

    /// The agent's delegate grants with their targets, read fresh (a revoked grant or a
    /// deleted target is gone at once).
    pub async fn delegate_targets(
        &self,
        tenant: TenantId,
        id: AgentId,
    ) -> Result<Vec<DelegateTarget>, AgentError> {
        let mut tx = self.pool.begin().await?;
        brain_migrations::set_tenant(&mut tx, tenant).await?;
        let rows: Vec<DelegateTargetRow> = sqlx::query_as(
            "SELECT g.target_agent_id, g.approval, g.max_calls_per_run, a.slug, a.name, a.role, \
             a.goal FROM delegate_grants g JOIN agents a ON a.id = g.target_agent_id \
             WHERE g.tenant_id = $1 AND g.agent_id = $2 ORDER BY g.id",
        )
        .bind(tenant.0)
        .bind(id.0)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.into_iter()
            .map(|row| {
                Ok(DelegateTarget {
                    grant: DelegateGrant {
                        agent: AgentId(row.target_agent_id),
                        approval: approval_from_row(&row.approval),
                        max_calls_per_run: row
                            .max_calls_per_run
                            .and_then(|n| u32::try_from(n).ok()),
                    },
                    slug: Slug::new(row.slug)?,
                    name: row.name,
                    role: NonEmptyText::new("role", row.role)?,
                    goal: NonEmptyText::new("goal", row.goal)?,
                })
            })
            .collect()
    }

    pub async fn delete(&self, tenant: TenantId, id: AgentId) -> Result<(), AgentError> {
        let mut tx = self.pool.begin().await?;
        brain_migrations::set_tenant(&mut tx, tenant).await?;
        let deleted = sqlx::query("DELETE FROM agents WHERE id = $1 AND tenant_id = $2")
            .bind(id.0)
            .bind(tenant.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        if deleted == 0 {
            return Err(AgentError::NotFound);
        }
        Ok(())
    }

    /// Records the supervisor's view of the agent (not a config change: no version bump).
    pub async fn set_health(
        &self,
        tenant: TenantId,
        id: AgentId,
        health: AgentHealth,
    ) -> Result<(), AgentError> {
        let mut tx = self.pool.begin().await?;
        brain_migrations::set_tenant(&mut tx, tenant).await?;
        let n = sqlx::query("UPDATE agents SET status = $3 WHERE id = $1 AND tenant_id = $2")
            .bind(id.0)
            .bind(tenant.0)
            .bind(health.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        if n == 0 {
            return Err(AgentError::NotFound);
        }
        Ok(())
    }

    /// The agent's current grants, read fresh (revocation checks).
    pub async fn grants(
        &self,
        tenant: TenantId,
        id: AgentId,
    ) -> Result<Vec<ToolGrant>, AgentError> {
        let mut tx = self.pool.begin().await?;
        brain_migrations::set_tenant(&mut tx, tenant).await?;
        let grants = fetch_grants(&mut tx, id).await?;
        tx.commit().await?;
        Ok(grants)
    }
}

async fn lock(conn: &mut PgConnection, id: AgentId) -> Result<(), AgentError> {
    let found: Option<Uuid> = sqlx::query_scalar("SELECT id FROM agents WHERE id = $1 FOR UPDATE")
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?;
    found.map(drop).ok_or(AgentError::NotFound)
}

async fn fetch(conn: &mut PgConnection, id: AgentId) -> Result<AgentSpec, AgentError> {
    let row: Option<AgentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {AGENT_COLUMNS} FROM agents WHERE id = $1"
    )))
    .bind(id.0)
    .fetch_optional(&mut *conn)
    .await?;
    let row = row.ok_or(AgentError::NotFound)?;
    let grants = fetch_grants(conn, id).await?;
    let delegates: Vec<DelegateRow> = sqlx::query_as(
        "SELECT agent_id, target_agent_id, approval, max_calls_per_run FROM delegate_grants \
         WHERE agent_id = $1 ORDER BY id",
    )
    .bind(id.0)
    .fetch_all(&mut *conn)
    .await?;
    spec_from_row(
        row,
        grants,
        delegates.into_iter().map(delegate_from_row).collect(),
    )
}

async fn fetch_grants(conn: &mut PgConnection, id: AgentId) -> Result<Vec<ToolGrant>, AgentError> {
    let rows: Vec<GrantRow> = sqlx::query_as(
        "SELECT agent_id, connector, actions, approval, max_calls_per_run FROM tool_grants \
         WHERE agent_id = $1 ORDER BY connector",
    )
    .bind(id.0)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(grant_from_row).collect())
}

async fn insert_grants(
    conn: &mut PgConnection,
    tenant: TenantId,
    agent: Uuid,
    grants: &[ToolGrant],
) -> Result<(), AgentError> {
    for grant in grants {
        if let Some((protocol, server)) = grant.tool_source() {
            check_mcp_grant(conn, protocol, server, &grant.actions).await?;
        }
        sqlx::query(
            "INSERT INTO tool_grants (id, tenant_id, agent_id, connector, actions, approval, \
             max_calls_per_run) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(Uuid::now_v7())
        .bind(tenant.0)
        .bind(agent)
        .bind(&grant.connector)
        .bind(&grant.actions)
        .bind(grant.approval.as_str())
        .bind(
            grant
                .max_calls_per_run
                .map(|n| i32::try_from(n).unwrap_or(i32::MAX)),
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// An MCP server grant must name one of the tenant's servers (row-level security hides the
/// others) and tools it listed when last refreshed.
async fn check_mcp_grant(
    conn: &mut PgConnection,
    protocol: &str,
    server: &str,
    tools: &[String],
) -> Result<(), AgentError> {
    let listed: Option<serde_json::Value> =
        sqlx::query_scalar("SELECT tools FROM mcp_servers WHERE slug = $1 AND protocol = $2")
            .bind(server)
            .bind(protocol)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(listed) = listed else {
        let what = match protocol {
            "a2a" => "remote A2A agent",
            _ => "MCP server",
        };
        return Err(FieldError::new("tools", format!("unknown {what} `{server}`")).into());
    };
    let known = |tool: &str| {
        listed
            .as_array()
            .is_some_and(|all| all.iter().any(|t| t["name"] == tool))
    };
    if let Some(bad) = tools.iter().find(|t| *t != "*" && !known(t)) {
        return Err(FieldError::new(
            "tools",
            format!("MCP server `{server}` lists no tool `{bad}` (refresh it if it is new)"),
        )
        .into());
    }
    Ok(())
}

/// Inserts `agent`'s delegate grants after checking that every target is another agent of the
/// same tenant. Another tenant's agent is invisible under row-level security, so it reads as
/// "no such agent" like an id that never existed.
async fn insert_delegates(
    conn: &mut PgConnection,
    tenant: TenantId,
    agent: AgentId,
    delegates: &[DelegateGrant],
) -> Result<(), AgentError> {
    if delegates.is_empty() {
        return Ok(());
    }
    if delegates.iter().any(|d| d.agent == agent) {
        return Err(FieldError::new("delegates", "an agent cannot delegate to itself").into());
    }
    let ids: Vec<Uuid> = delegates.iter().map(|d| d.agent.0).collect();
    let found: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM agents WHERE tenant_id = $1 AND id = ANY($2)")
            .bind(tenant.0)
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await?;
    if let Some(missing) = ids.iter().find(|id| !found.contains(id)) {
        return Err(no_such_delegate(*missing));
    }
    for delegate in delegates {
        let inserted = sqlx::query(
            "INSERT INTO delegate_grants (id, tenant_id, agent_id, target_agent_id, approval, \
             max_calls_per_run) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(Uuid::now_v7())
        .bind(tenant.0)
        .bind(agent.0)
        .bind(delegate.agent.0)
        .bind(delegate.approval.as_str())
        .bind(
            delegate
                .max_calls_per_run
                .map(|n| i32::try_from(n).unwrap_or(i32::MAX)),
        )
        .execute(&mut *conn)
        .await;
        match inserted {
            Ok(_) => {}
            // The target was deleted since the check above.
            Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                return Err(no_such_delegate(delegate.agent.0));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn no_such_delegate(id: Uuid) -> AgentError {
    FieldError::new("delegates", format!("no such agent `{id}` in this tenant")).into()
}
