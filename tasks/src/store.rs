//! Tasks and their steps in Postgres, under row-level security. The activities keep these rows
//! current; the API reads them.

use brain_auth::TenantId;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::error::TaskError;
use super::model::{
    CallbackStatus, StepKind, StepRecord, StepStatus, StepView, TaskKind, TaskOutcome, TaskStatus,
    TaskView,
};

/// What [`TaskStore::finish`] found: the task's kind, and whether this finish ended it (a
/// retried one, after a commit, finds it ended already).
pub(crate) struct Ended {
    pub kind: String,
    pub first: bool,
}

/// A new task row.
pub(crate) struct NewTaskRow<'a> {
    pub id: Uuid,
    pub kind: TaskKind,
    pub agent_id: Option<Uuid>,
    pub rule_id: Option<Uuid>,
    pub workflow_id: &'a str,
    pub idempotency_key: Option<&'a str>,
    pub input: Value,
    pub callback_url: Option<&'a str>,
    /// The task that started this one (a crew run, a rule's agent step).
    pub parent_task_id: Option<Uuid>,
    pub crew_id: Option<Uuid>,
}

/// Which tasks a listing shows; every field given must match.
#[derive(Clone, Copy, Debug, Default)]
pub struct TaskFilter {
    pub status: Option<TaskStatus>,
    pub agent: Option<Uuid>,
    /// Runs of this crew.
    pub crew: Option<Uuid>,
}

#[derive(sqlx::FromRow)]
struct TaskRow {
    id: Uuid,
    kind: String,
    agent_id: Option<Uuid>,
    rule_id: Option<Uuid>,
    crew_id: Option<Uuid>,
    parent_task_id: Option<Uuid>,
    status: String,
    input: Value,
    output: Option<Value>,
    error: Option<String>,
    usage: Option<Value>,
    callback_url: Option<String>,
    callback_status: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

/// A stored name as its enum; a value the schema's checks should have kept out is an error.
fn named<T>(value: &str, column: &str, parse: fn(&str) -> Option<T>) -> Result<T, TaskError> {
    parse(value).ok_or_else(|| TaskError::Internal(format!("unknown {column} `{value}`")))
}

impl TaskRow {
    fn into_view(self, steps: Vec<StepView>) -> Result<TaskView, TaskError> {
        Ok(TaskView {
            task_id: self.id,
            kind: named(&self.kind, "task kind", TaskKind::parse)?,
            agent_id: self.agent_id,
            rule_id: self.rule_id,
            crew_id: self.crew_id,
            parent_task_id: self.parent_task_id,
            status: named(&self.status, "task status", TaskStatus::parse)?,
            input: self.input,
            output: self.output,
            error: self.error,
            usage: self.usage,
            callback_url: self.callback_url,
            callback_status: self
                .callback_status
                .as_deref()
                .map(|v| named(v, "callback status", CallbackStatus::parse))
                .transpose()?,
            created_at: self.created_at,
            updated_at: self.updated_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            steps,
        })
    }
}

const TASK_COLUMNS: &str = "id, kind, agent_id, rule_id, crew_id, parent_task_id, status, input, \
     output, error, usage, callback_url, callback_status, created_at, updated_at, started_at, \
     finished_at";

#[derive(sqlx::FromRow)]
struct StepRow {
    seq: i32,
    kind: String,
    status: String,
    call_id: Option<String>,
    connector: Option<String>,
    action: Option<String>,
    detail: Value,
    error: Option<String>,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl TryFrom<StepRow> for StepView {
    type Error = TaskError;

    fn try_from(r: StepRow) -> Result<Self, TaskError> {
        Ok(StepView {
            seq: r.seq,
            kind: named(&r.kind, "step kind", StepKind::parse)?,
            status: named(&r.status, "step status", StepStatus::parse)?,
            call_id: r.call_id,
            connector: r.connector,
            action: r.action,
            detail: r.detail,
            error: r.error,
            started_at: r.started_at,
            finished_at: r.finished_at,
        })
    }
}

/// What a task's identity row says: enough to find its workflow and check a request.
#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct TaskRef {
    pub id: Uuid,
    pub kind: String,
    pub agent_id: Option<Uuid>,
    pub workflow_id: String,
    pub status: String,
    pub input: Value,
}

#[derive(Clone)]
pub struct TaskStore {
    db: PgPool,
}

impl TaskStore {
    pub fn new(db: PgPool) -> Self {
        Self { db }
    }

    pub fn pool(&self) -> &PgPool {
        &self.db
    }

    async fn begin(
        &self,
        tenant: TenantId,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, TaskError> {
        let mut tx = self.db.begin().await?;
        brain_migrations::set_tenant(&mut tx, tenant).await?;
        Ok(tx)
    }

    /// Inserts the task unless its idempotency key (or id) was used before; returns the task
    /// that holds the key and whether it is new.
    pub(crate) async fn insert(
        conn: &mut PgConnection,
        tenant: TenantId,
        row: &NewTaskRow<'_>,
    ) -> Result<(TaskRef, bool), TaskError> {
        let inserted: Option<TaskRef> = sqlx::query_as(
            "INSERT INTO tasks (id, tenant_id, kind, agent_id, rule_id, workflow_id, \
             idempotency_key, input, callback_url, parent_task_id, crew_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT DO NOTHING \
             RETURNING id, kind, agent_id, workflow_id, status, input",
        )
        .bind(row.id)
        .bind(tenant.0)
        .bind(row.kind.as_str())
        .bind(row.agent_id)
        .bind(row.rule_id)
        .bind(row.workflow_id)
        .bind(row.idempotency_key)
        .bind(&row.input)
        .bind(row.callback_url)
        .bind(row.parent_task_id)
        .bind(row.crew_id)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(task) = inserted {
            return Ok((task, true));
        }
        let existing: Option<TaskRef> = sqlx::query_as(
            "SELECT id, kind, agent_id, workflow_id, status, input FROM tasks \
             WHERE tenant_id = $1 AND (id = $2 OR workflow_id = $3 \
             OR ($4::text IS NOT NULL AND idempotency_key = $4))",
        )
        .bind(tenant.0)
        .bind(row.id)
        .bind(row.workflow_id)
        .bind(row.idempotency_key)
        .fetch_optional(&mut *conn)
        .await?;
        existing
            .map(|t| (t, false))
            .ok_or_else(|| TaskError::Internal("task insert conflicted with nothing".into()))
    }

    /// Creates the task row if the API did not (a schedule's run, a child task), and marks it
    /// running. Returns the task id and whether this call started it (retries see `false`).
    pub(crate) async fn start(
        &self,
        tenant: TenantId,
        row: &NewTaskRow<'_>,
    ) -> Result<(Uuid, bool), TaskError> {
        let mut tx = self.begin(tenant).await?;
        let (task, _) = Self::insert(&mut tx, tenant, row).await?;
        let started: Option<(Uuid,)> = sqlx::query_as(
            "UPDATE tasks SET status = 'running', started_at = now(), updated_at = now() \
             WHERE tenant_id = $1 AND id = $2 AND status = 'queued' RETURNING id",
        )
        .bind(tenant.0)
        .bind(task.id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((task.id, started.is_some()))
    }

    pub(crate) async fn reference(&self, tenant: TenantId, id: Uuid) -> Result<TaskRef, TaskError> {
        let mut tx = self.begin(tenant).await?;
        let task: Option<TaskRef> = sqlx::query_as(
            "SELECT id, kind, agent_id, workflow_id, status, input FROM tasks \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.0)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        task.ok_or(TaskError::NotFound)
    }

    pub async fn get(&self, tenant: TenantId, id: Uuid) -> Result<TaskView, TaskError> {
        let mut tx = self.begin(tenant).await?;
        let row: Option<TaskRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(tenant.0)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let row = row.ok_or(TaskError::NotFound)?;
        let steps: Vec<StepRow> = sqlx::query_as(
            "SELECT seq, kind, status, call_id, connector, action, detail, error, started_at, \
             finished_at FROM task_steps WHERE tenant_id = $1 AND task_id = $2 ORDER BY seq",
        )
        .bind(tenant.0)
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let steps = steps
            .into_iter()
            .map(StepView::try_from)
            .collect::<Result<_, _>>()?;
        row.into_view(steps)
    }

    /// Newest first, without steps.
    pub async fn list(
        &self,
        tenant: TenantId,
        filter: TaskFilter,
        limit: i64,
    ) -> Result<Vec<TaskView>, TaskError> {
        let mut tx = self.begin(tenant).await?;
        let rows: Vec<TaskRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE tenant_id = $1 \
             AND ($2::text IS NULL OR status = $2) AND ($3::uuid IS NULL OR agent_id = $3) \
             AND ($4::uuid IS NULL OR crew_id = $4) \
             ORDER BY created_at DESC LIMIT $5"
        )))
        .bind(tenant.0)
        .bind(filter.status.map(TaskStatus::as_str))
        .bind(filter.agent)
        .bind(filter.crew)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.into_iter().map(|r| r.into_view(Vec::new())).collect()
    }

    /// Writes a step (a retried activity rewrites the same row), and the task's status when it
    /// changes with it — also on the parent task, so a crew run waits visibly while one of
    /// its members waits for approval. Returns the parent task, if any.
    pub(crate) async fn record_step(
        &self,
        tenant: TenantId,
        task: Uuid,
        step: &StepRecord,
        task_status: Option<TaskStatus>,
    ) -> Result<Option<Uuid>, TaskError> {
        let mut tx = self.begin(tenant).await?;
        sqlx::query(
            "INSERT INTO task_steps (tenant_id, task_id, seq, kind, status, call_id, connector, \
             action, detail, error, finished_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, CASE WHEN $11 THEN now() END) \
             ON CONFLICT (task_id, seq) DO UPDATE SET status = EXCLUDED.status, \
             detail = task_steps.detail || EXCLUDED.detail, error = EXCLUDED.error, \
             finished_at = EXCLUDED.finished_at",
        )
        .bind(tenant.0)
        .bind(task)
        .bind(i32::try_from(step.seq).unwrap_or(i32::MAX))
        .bind(step.kind.as_str())
        .bind(step.status.as_str())
        .bind(&step.call_id)
        .bind(&step.connector)
        .bind(&step.action)
        .bind(if step.detail.is_object() {
            step.detail.clone()
        } else {
            json!({})
        })
        .bind(&step.error)
        .bind(step.status.is_final())
        .execute(&mut *tx)
        .await?;
        let parent: Option<Option<Uuid>> =
            sqlx::query_scalar("SELECT parent_task_id FROM tasks WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(task)
                .fetch_optional(&mut *tx)
                .await?;
        let parent = parent.flatten();
        if let Some(status) = task_status {
            set_status(&mut tx, tenant, task, status).await?;
            if let Some(parent) = parent {
                set_status(&mut tx, tenant, parent, status).await?;
            }
        }
        tx.commit().await?;
        Ok(parent)
    }

    /// The task's parent, if it has one.
    pub(crate) async fn parent(
        &self,
        tenant: TenantId,
        task: Uuid,
    ) -> Result<Option<Uuid>, TaskError> {
        let mut tx = self.begin(tenant).await?;
        let parent: Option<Option<Uuid>> =
            sqlx::query_scalar("SELECT parent_task_id FROM tasks WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(task)
                .fetch_optional(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(parent.flatten())
    }

    /// The waiting approval `call_id` of `task` or of a task it started (a crew member's
    /// turn, a rule's agent step): the task that holds it, its kind and workflow, and the
    /// step's detail.
    pub(crate) async fn pending_approval(
        &self,
        tenant: TenantId,
        task: Uuid,
        call_id: &str,
    ) -> Result<Option<(TaskRef, Value)>, TaskError> {
        #[derive(sqlx::FromRow)]
        struct Found {
            id: Uuid,
            kind: String,
            agent_id: Option<Uuid>,
            workflow_id: String,
            status: String,
            input: Value,
            detail: Value,
        }
        let mut tx = self.begin(tenant).await?;
        let found: Option<Found> = sqlx::query_as(
            "WITH RECURSIVE tree AS ( \
                 SELECT id FROM tasks WHERE tenant_id = $1 AND id = $2 \
                 UNION ALL \
                 SELECT t.id FROM tasks t JOIN tree ON t.parent_task_id = tree.id \
                 WHERE t.tenant_id = $1) \
             SELECT t.id, t.kind, t.agent_id, t.workflow_id, t.status, t.input, s.detail \
             FROM tree JOIN tasks t ON t.id = tree.id \
             JOIN task_steps s ON s.task_id = t.id \
             WHERE s.call_id = $3 AND s.kind = 'approval' AND s.status = 'awaiting_approval' \
             ORDER BY t.created_at LIMIT 1",
        )
        .bind(tenant.0)
        .bind(task)
        .bind(call_id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(found.map(|f| {
            (
                TaskRef {
                    id: f.id,
                    kind: f.kind,
                    agent_id: f.agent_id,
                    workflow_id: f.workflow_id,
                    status: f.status,
                    input: f.input,
                },
                f.detail,
            )
        }))
    }

    /// Writes how the task ended and, the first time it ends, counts it in the day's usage;
    /// `conn` must be inside the outcome's tenant. `None` if there is no such task.
    pub(crate) async fn finish(
        conn: &mut PgConnection,
        outcome: &TaskOutcome,
    ) -> Result<Option<Ended>, TaskError> {
        let (tenant, task) = (outcome.tenant, outcome.task_id);
        let row: Option<(String, Option<Uuid>, String)> = sqlx::query_as(
            "SELECT kind, agent_id, status FROM tasks WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(task)
        .fetch_optional(&mut *conn)
        .await?;
        let Some((kind, agent_id, previous)) = row else {
            return Ok(None);
        };
        // A retried finish after a commit must not count the task twice.
        let first = !TaskStatus::parse(&previous).is_some_and(TaskStatus::is_final);
        sqlx::query(
            "UPDATE tasks SET status = $3, output = $4, error = $5, usage = $6, \
             finished_at = now(), updated_at = now(), \
             callback_status = CASE WHEN callback_url IS NOT NULL THEN 'pending' END \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(task)
        .bind(outcome.status.as_str())
        .bind(outcome.output.as_ref())
        .bind(outcome.error.as_deref())
        .bind(outcome.usage.map(|u| json!(u)))
        .execute(&mut *conn)
        .await?;
        // Steps a cancellation or failure interrupted are not running any more.
        sqlx::query(
            "UPDATE task_steps SET status = 'cancelled', finished_at = now() \
             WHERE tenant_id = $1 AND task_id = $2 AND status IN ('running', 'awaiting_approval')",
        )
        .bind(tenant)
        .bind(task)
        .execute(&mut *conn)
        .await?;
        if first {
            sqlx::query(
                "INSERT INTO usage (tenant_id, day, agent_id, tasks) \
                 VALUES ($1, (now() AT TIME ZONE 'utc')::date, $2, 1) \
                 ON CONFLICT (tenant_id, day, agent_id) DO UPDATE SET tasks = usage.tasks + 1",
            )
            .bind(tenant)
            .bind(agent_id)
            .execute(&mut *conn)
            .await?;
        }
        Ok(Some(Ended { kind, first }))
    }

    pub(crate) async fn set_callback_status(
        &self,
        tenant: TenantId,
        task: Uuid,
        status: CallbackStatus,
    ) -> Result<(), TaskError> {
        let mut tx = self.begin(tenant).await?;
        sqlx::query(
            "UPDATE tasks SET callback_status = $3, updated_at = now() \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.0)
        .bind(task)
        .bind(status.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn transaction(
        &self,
        tenant: TenantId,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, TaskError> {
        self.begin(tenant).await
    }
}

async fn set_status(
    conn: &mut PgConnection,
    tenant: TenantId,
    task: Uuid,
    status: TaskStatus,
) -> Result<(), TaskError> {
    // A finished task keeps its final status whatever a late activity says.
    sqlx::query(
        "UPDATE tasks SET status = $3, updated_at = now() WHERE tenant_id = $1 AND id = $2 \
         AND status NOT IN ('succeeded', 'failed', 'cancelled')",
    )
    .bind(tenant.0)
    .bind(task)
    .bind(status.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(())
}
