//! The rule store: rules in Postgres, always inside the tenant's row-level-security context
//! and filtered by tenant as well.
//!
//! The `*_in` methods run in a caller's transaction that is already inside the tenant, so a
//! caller can create or remove the rule's Temporal schedule and roll the row back if that fails.

use brain_auth::TenantId;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::error::RuleError;
use super::model::{Rule, RuleInput, RulePatch, Step, Trigger};

/// Reads and writes automation rules.
#[derive(Clone)]
pub struct RuleStore {
    db: PgPool,
}

#[derive(sqlx::FromRow)]
struct RuleRow {
    id: Uuid,
    name: String,
    enabled: bool,
    trigger: Json<Trigger>,
    steps: Json<Vec<Step>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<RuleRow> for Rule {
    fn from(row: RuleRow) -> Self {
        Rule {
            id: row.id,
            name: row.name,
            enabled: row.enabled,
            trigger: row.trigger.0,
            steps: row.steps.0,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

const RULE_COLUMNS: &str = "id, name, enabled, trigger, steps, created_at, updated_at";

impl RuleStore {
    pub fn new(db: PgPool) -> Self {
        Self { db }
    }

    pub fn pool(&self) -> &PgPool {
        &self.db
    }

    /// A transaction inside `tenant`, for the `*_in` methods.
    pub async fn begin(
        &self,
        tenant: TenantId,
    ) -> Result<Transaction<'static, Postgres>, RuleError> {
        Ok(brain_migrations::begin_tenant(&self.db, tenant).await?)
    }

    /// Validates and stores a new rule.
    pub async fn create(&self, tenant: TenantId, input: RuleInput) -> Result<Rule, RuleError> {
        let mut tx = self.begin(tenant).await?;
        let rule = Self::create_in(&mut tx, tenant, input).await?;
        tx.commit().await?;
        Ok(rule)
    }

    /// [`create`](Self::create) in the caller's transaction, which must be inside `tenant`.
    pub async fn create_in(
        conn: &mut PgConnection,
        tenant: TenantId,
        input: RuleInput,
    ) -> Result<Rule, RuleError> {
        input.validate()?;
        check_agents(conn, tenant, &input.steps).await?;
        check_crews(conn, tenant, &input.steps).await?;
        let row: RuleRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO rules (id, tenant_id, name, enabled, trigger, steps) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {RULE_COLUMNS}"
        )))
        .bind(Uuid::now_v7())
        .bind(tenant.0)
        .bind(&input.name)
        .bind(input.enabled)
        .bind(Json(&input.trigger))
        .bind(Json(&input.steps))
        .fetch_one(&mut *conn)
        .await?;
        Ok(row.into())
    }

    /// The tenant's rules, newest first.
    pub async fn list(&self, tenant: TenantId) -> Result<Vec<Rule>, RuleError> {
        let mut tx = self.begin(tenant).await?;
        let rows: Vec<RuleRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {RULE_COLUMNS} FROM rules WHERE tenant_id = $1 \
             ORDER BY created_at DESC, id DESC"
        )))
        .bind(tenant.0)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(Rule::from).collect())
    }

    pub async fn get(&self, tenant: TenantId, id: Uuid) -> Result<Rule, RuleError> {
        let mut tx = self.begin(tenant).await?;
        let rule = Self::get_in(&mut tx, tenant, id).await?;
        tx.commit().await?;
        Ok(rule)
    }

    /// [`get`](Self::get) in the caller's transaction, which must be inside `tenant`.
    pub async fn get_in(
        conn: &mut PgConnection,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Rule, RuleError> {
        fetch(conn, tenant, id, false).await
    }

    /// Applies `patch` to the stored rule, validates the result as a whole and stores it.
    pub async fn update(
        &self,
        tenant: TenantId,
        id: Uuid,
        patch: RulePatch,
    ) -> Result<Rule, RuleError> {
        let mut tx = self.begin(tenant).await?;
        let rule = Self::update_in(&mut tx, tenant, id, patch).await?;
        tx.commit().await?;
        Ok(rule)
    }

    /// [`update`](Self::update) in the caller's transaction, which must be inside `tenant`.
    /// The row stays locked until that transaction ends.
    pub async fn update_in(
        conn: &mut PgConnection,
        tenant: TenantId,
        id: Uuid,
        patch: RulePatch,
    ) -> Result<Rule, RuleError> {
        let current = fetch(conn, tenant, id, true).await?;
        let input = patch.apply(current.into());
        input.validate()?;
        check_agents(conn, tenant, &input.steps).await?;
        check_crews(conn, tenant, &input.steps).await?;
        // clock_timestamp, not now(): a rule created and changed in one transaction still
        // shows the change.
        let row: Option<RuleRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE rules SET name = $3, enabled = $4, trigger = $5, steps = $6, \
             updated_at = greatest(clock_timestamp(), updated_at) \
             WHERE tenant_id = $1 AND id = $2 RETURNING {RULE_COLUMNS}"
        )))
        .bind(tenant.0)
        .bind(id)
        .bind(&input.name)
        .bind(input.enabled)
        .bind(Json(&input.trigger))
        .bind(Json(&input.steps))
        .fetch_optional(&mut *conn)
        .await?;
        row.map(Rule::from).ok_or(RuleError::NotFound)
    }

    /// Deletes a rule and returns it, so the caller can remove its schedule.
    pub async fn delete(&self, tenant: TenantId, id: Uuid) -> Result<Rule, RuleError> {
        let mut tx = self.begin(tenant).await?;
        let rule = Self::delete_in(&mut tx, tenant, id).await?;
        tx.commit().await?;
        Ok(rule)
    }

    /// [`delete`](Self::delete) in the caller's transaction, which must be inside `tenant`.
    pub async fn delete_in(
        conn: &mut PgConnection,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Rule, RuleError> {
        let row: Option<RuleRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "DELETE FROM rules WHERE tenant_id = $1 AND id = $2 RETURNING {RULE_COLUMNS}"
        )))
        .bind(tenant.0)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
        row.map(Rule::from).ok_or(RuleError::NotFound)
    }

    /// The tenant's enabled rules triggered by `event` (e.g. `shopify.orders/create`), oldest
    /// first so they run in the order they were made. Conditions are not evaluated here.
    pub async fn enabled_for_event(
        &self,
        tenant: TenantId,
        event: &str,
    ) -> Result<Vec<Rule>, RuleError> {
        let mut tx = self.begin(tenant).await?;
        let rows: Vec<RuleRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {RULE_COLUMNS} FROM rules \
             WHERE tenant_id = $1 AND enabled AND trigger->>'event' = $2 \
             ORDER BY created_at, id"
        )))
        .bind(tenant.0)
        .bind(event)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(Rule::from).collect())
    }
}

async fn fetch(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
    for_update: bool,
) -> Result<Rule, RuleError> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let row: Option<RuleRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RULE_COLUMNS} FROM rules WHERE tenant_id = $1 AND id = $2{lock}"
    )))
    .bind(tenant.0)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(Rule::from).ok_or(RuleError::NotFound)
}

/// Every agent an `agent_task` step names must exist in this tenant.
async fn check_agents(
    conn: &mut PgConnection,
    tenant: TenantId,
    steps: &[Step],
) -> Result<(), RuleError> {
    let wanted: Vec<Uuid> = steps
        .iter()
        .filter_map(|step| match step {
            Step::AgentTask(task) => Some(task.agent_id),
            _ => None,
        })
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let found: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM agents WHERE tenant_id = $1 AND id = ANY($2)")
            .bind(tenant.0)
            .bind(&wanted)
            .fetch_all(&mut *conn)
            .await?;
    for (i, step) in steps.iter().enumerate() {
        if let Step::AgentTask(task) = step
            && !found.contains(&task.agent_id)
        {
            return Err(RuleError::validation(
                format!("steps.{i}.agent_task.agent_id"),
                "no such agent",
            ));
        }
    }
    Ok(())
}

/// Crew steps must name a crew of this tenant.
async fn check_crews(
    conn: &mut PgConnection,
    tenant: TenantId,
    steps: &[Step],
) -> Result<(), RuleError> {
    for (i, step) in steps.iter().enumerate() {
        if let Step::CrewRun(run) = step {
            let found: Option<Uuid> =
                sqlx::query_scalar("SELECT id FROM crews WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.0)
                    .bind(run.crew_id)
                    .fetch_optional(&mut *conn)
                    .await?;
            if found.is_none() {
                return Err(RuleError::validation(
                    format!("steps.{i}.crew_run.crew_id"),
                    "no such crew",
                ));
            }
        }
    }
    Ok(())
}
