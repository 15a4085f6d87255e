//! Crews: agents of one tenant working together on a list of tasks — in order, each seeing
//! the earlier outputs (`sequential`), or under a manager agent that hands tasks out through
//! delegation (`hierarchical`). A crew run is a durable task (`tasks::CrewRunWorkflow`).

use brain_auth::TenantId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

pub const MAX_MEMBERS: usize = 10;
pub const MAX_TASKS: usize = 20;
const MAX_TEXT: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum CrewError {
    #[error("crew not found")]
    NotFound,
    #[error(transparent)]
    Validation(#[from] brain_auth::FieldError),
    #[error("a crew named `{0}` already exists")]
    NameTaken(String),
    #[error("the crew was changed concurrently (expected version {0})")]
    VersionConflict(i32),
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

impl CrewError {
    fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        CrewError::Validation(brain_auth::FieldError::new(field, message))
    }
}

impl brain_auth::ErrorCode for CrewError {
    fn code(&self) -> brain_auth::Code {
        use brain_auth::Code;
        match self {
            CrewError::NotFound => Code::NotFound,
            CrewError::Validation(_) => Code::ValidationFailed,
            CrewError::NameTaken(_) => Code::NameTaken,
            CrewError::VersionConflict(_) => Code::VersionConflict,
            CrewError::Database(e) => e.code(),
        }
    }
}

/// `sequential`: tasks in order, each seeing the earlier outputs; `hierarchical`: a manager
/// agent hands the tasks out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Process {
    Sequential,
    Hierarchical,
}

impl Process {
    pub fn as_str(self) -> &'static str {
        match self {
            Process::Sequential => "sequential",
            Process::Hierarchical => "hierarchical",
        }
    }
}

/// One task of a crew: what to do and what a good result looks like.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CrewTask {
    pub description: String,
    pub expected_output: String,
    /// Who does it; in a sequential crew without one, members take tasks in turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<Uuid>,
}

/// `POST /v1/crews`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CrewInput {
    /// Unique in the tenant, 1 to 200 characters.
    pub name: String,
    /// 1 to 10 distinct agents of the tenant.
    pub members: Vec<Uuid>,
    pub process: Process,
    /// The agent that hands the tasks out: required by, and only allowed for, a `hierarchical`
    /// crew, and not one of its members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager_agent_id: Option<Uuid>,
    /// 1 to 20 tasks.
    #[serde(default)]
    pub tasks: Vec<CrewTask>,
}

/// `PATCH /v1/crews/{id}`: each field present replaces the crew's.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CrewPatch {
    pub name: Option<String>,
    pub members: Option<Vec<Uuid>>,
    pub process: Option<Process>,
    /// `null` removes the manager.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub manager_agent_id: Option<Option<Uuid>>,
    pub tasks: Option<Vec<CrewTask>>,
}

mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

impl CrewPatch {
    pub fn apply(self, crew: CrewInput) -> CrewInput {
        CrewInput {
            name: self.name.unwrap_or(crew.name),
            members: self.members.unwrap_or(crew.members),
            process: self.process.unwrap_or(crew.process),
            manager_agent_id: self.manager_agent_id.unwrap_or(crew.manager_agent_id),
            tasks: self.tasks.unwrap_or(crew.tasks),
        }
    }
}

/// A stored crew.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Crew {
    pub id: Uuid,
    pub name: String,
    pub members: Vec<Uuid>,
    pub process: Process,
    pub manager_agent_id: Option<Uuid>,
    pub tasks: Vec<CrewTask>,
    /// Bumped by every update; send it as `If-Match` to update only this version.
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Crew> for CrewInput {
    fn from(c: Crew) -> Self {
        CrewInput {
            name: c.name,
            members: c.members,
            process: c.process,
            manager_agent_id: c.manager_agent_id,
            tasks: c.tasks,
        }
    }
}

impl Crew {
    /// Who does task `index` of a sequential crew.
    pub fn assignee(&self, index: usize) -> Option<Uuid> {
        self.tasks
            .get(index)
            .and_then(|t| t.agent_id)
            .or_else(|| self.members.get(index % self.members.len().max(1)).copied())
    }
}

fn text(field: &str, value: &str) -> Result<(), CrewError> {
    if value.trim().is_empty() {
        return Err(CrewError::invalid(field, "must not be blank"));
    }
    if value.chars().count() > MAX_TEXT {
        return Err(CrewError::invalid(
            field,
            format!("must be at most {MAX_TEXT} characters"),
        ));
    }
    Ok(())
}

impl CrewInput {
    /// Shape checks; that the agents exist in the tenant is checked by the store.
    pub fn validate(&self) -> Result<(), CrewError> {
        if self.name.trim().is_empty() || self.name.chars().count() > 200 {
            return Err(CrewError::invalid("name", "must be 1 to 200 characters"));
        }
        if self.members.is_empty() || self.members.len() > MAX_MEMBERS {
            return Err(CrewError::invalid(
                "members",
                format!("must name 1 to {MAX_MEMBERS} agents"),
            ));
        }
        for (i, m) in self.members.iter().enumerate() {
            if self.members[..i].contains(m) {
                return Err(CrewError::invalid(format!("members.{i}"), "appears twice"));
            }
        }
        if self.tasks.is_empty() || self.tasks.len() > MAX_TASKS {
            return Err(CrewError::invalid(
                "tasks",
                format!("must hold 1 to {MAX_TASKS} tasks"),
            ));
        }
        for (i, task) in self.tasks.iter().enumerate() {
            text(&format!("tasks.{i}.description"), &task.description)?;
            text(&format!("tasks.{i}.expected_output"), &task.expected_output)?;
            if let Some(agent) = task.agent_id
                && !self.members.contains(&agent)
            {
                return Err(CrewError::invalid(
                    format!("tasks.{i}.agent_id"),
                    "must be one of the crew's members",
                ));
            }
        }
        match (self.process, self.manager_agent_id) {
            (Process::Hierarchical, None) => Err(CrewError::invalid(
                "manager_agent_id",
                "a hierarchical crew needs a manager",
            )),
            (Process::Hierarchical, Some(manager)) if self.members.contains(&manager) => {
                Err(CrewError::invalid(
                    "manager_agent_id",
                    "the manager delegates to the members and cannot be one of them",
                ))
            }
            (Process::Sequential, Some(_)) => Err(CrewError::invalid(
                "manager_agent_id",
                "only a hierarchical crew has a manager",
            )),
            _ => Ok(()),
        }
    }

    fn agents(&self) -> Vec<(String, Uuid)> {
        let mut agents: Vec<(String, Uuid)> = self
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| (format!("members.{i}"), *m))
            .collect();
        if let Some(manager) = self.manager_agent_id {
            agents.push(("manager_agent_id".to_owned(), manager));
        }
        agents
    }
}

#[derive(sqlx::FromRow)]
struct CrewRow {
    id: Uuid,
    name: String,
    members: Vec<Uuid>,
    process: String,
    manager_agent_id: Option<Uuid>,
    tasks: Json<Vec<CrewTask>>,
    version: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<CrewRow> for Crew {
    fn from(r: CrewRow) -> Self {
        Crew {
            id: r.id,
            name: r.name,
            members: r.members,
            process: if r.process == "hierarchical" {
                Process::Hierarchical
            } else {
                Process::Sequential
            },
            manager_agent_id: r.manager_agent_id,
            tasks: r.tasks.0,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const COLUMNS: &str =
    "id, name, members, process, manager_agent_id, tasks, version, created_at, updated_at";

/// Crews in Postgres, under row-level security.
#[derive(Clone)]
pub struct CrewStore {
    db: PgPool,
}

/// A write refused because another crew of the tenant has the name, or the database error.
fn name_taken_or(e: sqlx::Error, name: &str) -> CrewError {
    if unique_violation(&e) {
        CrewError::NameTaken(name.to_owned())
    } else {
        e.into()
    }
}

fn unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "23505")
}

impl CrewStore {
    pub fn new(db: PgPool) -> Self {
        Self { db }
    }

    /// Every agent the crew names must be an agent of this tenant (RLS hides the others).
    async fn check_agents(conn: &mut PgConnection, input: &CrewInput) -> Result<(), CrewError> {
        let ids: Vec<Uuid> = input.agents().iter().map(|(_, id)| *id).collect();
        let found: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM agents WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await?;
        match input
            .agents()
            .into_iter()
            .find(|(_, id)| !found.contains(id))
        {
            Some((field, _)) => Err(CrewError::invalid(field, "no such agent")),
            None => Ok(()),
        }
    }

    pub async fn create(&self, tenant: TenantId, input: CrewInput) -> Result<Crew, CrewError> {
        input.validate()?;
        let mut tx = brain_migrations::begin_tenant(&self.db, tenant).await?;
        Self::check_agents(&mut tx, &input).await?;
        let row: CrewRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO crews (id, tenant_id, name, members, process, manager_agent_id, tasks) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
        )))
        .bind(Uuid::now_v7())
        .bind(tenant.0)
        .bind(&input.name)
        .bind(&input.members)
        .bind(input.process.as_str())
        .bind(input.manager_agent_id)
        .bind(Json(&input.tasks))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| name_taken_or(e, &input.name))?;
        tx.commit().await?;
        Ok(row.into())
    }

    pub async fn list(&self, tenant: TenantId) -> Result<Vec<Crew>, CrewError> {
        let mut tx = brain_migrations::begin_tenant(&self.db, tenant).await?;
        let rows: Vec<CrewRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM crews WHERE tenant_id = $1 ORDER BY created_at DESC"
        )))
        .bind(tenant.0)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(Crew::from).collect())
    }

    pub async fn get(&self, tenant: TenantId, id: Uuid) -> Result<Crew, CrewError> {
        let mut tx = brain_migrations::begin_tenant(&self.db, tenant).await?;
        let row: Option<CrewRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM crews WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(tenant.0)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.map(Crew::from).ok_or(CrewError::NotFound)
    }

    pub async fn update(
        &self,
        tenant: TenantId,
        id: Uuid,
        patch: CrewPatch,
        expected_version: Option<i32>,
    ) -> Result<Crew, CrewError> {
        let mut tx = brain_migrations::begin_tenant(&self.db, tenant).await?;
        let current: Option<CrewRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM crews WHERE tenant_id = $1 AND id = $2 FOR UPDATE"
        )))
        .bind(tenant.0)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let current: Crew = current.ok_or(CrewError::NotFound)?.into();
        if let Some(expected) = expected_version
            && expected != current.version
        {
            return Err(CrewError::VersionConflict(expected));
        }
        let input = patch.apply(current.into());
        input.validate()?;
        Self::check_agents(&mut tx, &input).await?;
        let row: CrewRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE crews SET name = $3, members = $4, process = $5, manager_agent_id = $6, \
             tasks = $7, version = version + 1, updated_at = now() \
             WHERE tenant_id = $1 AND id = $2 RETURNING {COLUMNS}"
        )))
        .bind(tenant.0)
        .bind(id)
        .bind(&input.name)
        .bind(&input.members)
        .bind(input.process.as_str())
        .bind(input.manager_agent_id)
        .bind(Json(&input.tasks))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| name_taken_or(e, &input.name))?;
        tx.commit().await?;
        Ok(row.into())
    }

    pub async fn delete(&self, tenant: TenantId, id: Uuid) -> Result<(), CrewError> {
        let mut tx = brain_migrations::begin_tenant(&self.db, tenant).await?;
        let done = sqlx::query("DELETE FROM crews WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.0)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if done.rows_affected() == 0 {
            return Err(CrewError::NotFound);
        }
        Ok(())
    }

    /// Inside the caller's transaction (already in the tenant): used by the demo seed.
    pub async fn create_in(
        conn: &mut PgConnection,
        tenant: TenantId,
        input: CrewInput,
    ) -> Result<Crew, CrewError> {
        input.validate()?;
        Self::check_agents(conn, &input).await?;
        let row: CrewRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO crews (id, tenant_id, name, members, process, manager_agent_id, tasks) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
        )))
        .bind(Uuid::now_v7())
        .bind(tenant.0)
        .bind(&input.name)
        .bind(&input.members)
        .bind(input.process.as_str())
        .bind(input.manager_agent_id)
        .bind(Json(&input.tasks))
        .fetch_one(&mut *conn)
        .await?;
        Ok(row.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crew(process: Process, manager: Option<Uuid>) -> CrewInput {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        CrewInput {
            name: "Campaign crew".into(),
            members: vec![a, b],
            process,
            manager_agent_id: manager,
            tasks: vec![CrewTask {
                description: "Plan".into(),
                expected_output: "A plan".into(),
                agent_id: Some(a),
            }],
        }
    }

    fn field(e: CrewError) -> String {
        match e {
            CrewError::Validation(e) => e.field,
            other => panic!("not a validation error: {other}"),
        }
    }

    #[test]
    fn validation_names_the_field() {
        assert!(crew(Process::Sequential, None).validate().is_ok());
        assert!(
            crew(Process::Hierarchical, Some(Uuid::now_v7()))
                .validate()
                .is_ok()
        );
        assert_eq!(
            field(crew(Process::Hierarchical, None).validate().unwrap_err()),
            "manager_agent_id"
        );
        assert_eq!(
            field(
                crew(Process::Sequential, Some(Uuid::now_v7()))
                    .validate()
                    .unwrap_err()
            ),
            "manager_agent_id"
        );
        let mut c = crew(Process::Sequential, None);
        c.members.push(c.members[0]);
        assert_eq!(field(c.validate().unwrap_err()), "members.2");
        let mut c = crew(Process::Sequential, None);
        c.tasks[0].agent_id = Some(Uuid::now_v7());
        assert_eq!(field(c.validate().unwrap_err()), "tasks.0.agent_id");
        let mut c = crew(Process::Sequential, None);
        c.tasks[0].expected_output = " ".into();
        assert_eq!(field(c.validate().unwrap_err()), "tasks.0.expected_output");
        let mut c = crew(Process::Hierarchical, None);
        c.manager_agent_id = Some(c.members[1]);
        assert_eq!(field(c.validate().unwrap_err()), "manager_agent_id");
        let mut c = crew(Process::Sequential, None);
        c.tasks.clear();
        assert_eq!(field(c.validate().unwrap_err()), "tasks");
    }

    #[test]
    fn tasks_without_an_agent_go_round_the_members() {
        let c = crew(Process::Sequential, None);
        let mut stored = Crew {
            id: Uuid::now_v7(),
            name: c.name,
            members: c.members.clone(),
            process: c.process,
            manager_agent_id: None,
            tasks: vec![
                CrewTask {
                    description: "a".into(),
                    expected_output: "a".into(),
                    agent_id: None,
                },
                CrewTask {
                    description: "b".into(),
                    expected_output: "b".into(),
                    agent_id: None,
                },
            ],
            version: 1,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        assert_eq!(stored.assignee(0), Some(c.members[0]));
        assert_eq!(stored.assignee(1), Some(c.members[1]));
        stored.tasks[1].agent_id = Some(c.members[0]);
        assert_eq!(stored.assignee(1), Some(c.members[0]));
    }
}
