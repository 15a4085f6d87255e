//! [`TaskService`]: what the gateway calls for durable work — agent tasks, approvals,
//! cancellation, automation rules (with their Temporal schedules) and the runs that inbound
//! events and people start.

use std::sync::Arc;

use brain_agents::AgentStore;
use brain_agents::spec::AgentId;
use brain_agents::structured::OutputSchema;
use brain_auth::egress::EgressPolicy;
use brain_auth::secrets::SecretStore;
use brain_auth::{Role, TenantId};
use serde::Deserialize;
use serde_json::{Value, json};
use temporalio_client::schedules::{
    CreateScheduleOptions, DeleteScheduleOptions, ScheduleAction, ScheduleSpec,
};
use temporalio_client::tonic::Code;
use temporalio_client::{
    Client, WorkflowCancelOptions, WorkflowIdConflictPolicy, WorkflowSignalOptions,
    WorkflowStartOptions,
};
use tokio::sync::OnceCell;
use utoipa::ToSchema;
use uuid::Uuid;

use super::callback::CallbackSigner;
use super::error::TaskError;
use super::model::{
    AgentTaskInput, ApprovalDecision, CrewRunInput, RuleRunInput, StepTimeouts, TaskKind,
    TaskStatus, TaskView,
};
use super::store::{NewTaskRow, TaskFilter, TaskStore};
use super::worker::{TemporalSettings, connect};
use super::workflows::{AgentTaskWorkflow, CrewRunWorkflow, RuleRunWorkflow};
use brain_automation::crews::{Crew, CrewStore};
use brain_automation::rules::{Rule, RuleInput, RulePatch, RuleStore, TriggerKind, matches};

/// `POST /v1/agents/{id}/tasks`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    /// What the agent is asked to do; at most 100000 bytes.
    pub input: String,
    /// 1 to 255 visible ASCII characters; a repeated key answers the task it started (with
    /// the same input) instead of starting another.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// Where the signed completion callback is posted when the task ends.
    #[serde(default)]
    pub callback_url: Option<String>,
    /// A JSON Schema the answer must match: the agent is asked for JSON, a wrong answer is
    /// sent back with what was wrong (at most 3 answers), and the output gets the checked
    /// value as `json`; a task whose answers never fit fails (`invalid_model_output`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub output_schema: Option<Value>,
}

/// A task as answered by `202 Accepted`.
#[derive(Clone, Debug, serde::Serialize, ToSchema)]
pub struct StartedTask {
    pub task_id: Uuid,
    /// The task's status now (`queued` for a new one).
    pub status: String,
    /// Whether this request created the task (a repeated idempotency key answers `false`).
    #[serde(skip)]
    pub created: bool,
    /// The secret the completion callback is signed with; shown once, when created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_secret: Option<String>,
}

/// Who decides an approval, and with what authority.
#[derive(Clone, Debug)]
pub struct Approver {
    /// `user:<id>` or `api_key:<id>`.
    pub actor: String,
    /// A user's role; API keys carry none.
    pub role: Option<Role>,
}

/// An inbound connector event, already verified and stored by the webhook service.
#[derive(Clone, Debug)]
pub struct EventDelivery {
    /// The stored delivery row: runs it starts are keyed by it, so it never fires twice.
    pub delivery: Uuid,
    pub name: String,
    pub payload: Value,
}

/// `POST /v1/crews/{id}/runs`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCrewRun {
    /// What the crew works on; at most 100000 bytes.
    pub input: String,
    /// As for agent tasks: a repeated key answers the run it started.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

pub struct TaskService {
    store: TaskStore,
    agents: AgentStore,
    rules: RuleStore,
    crews: CrewStore,
    callbacks: CallbackSigner,
    settings: TemporalSettings,
    timeouts: StepTimeouts,
    client: OnceCell<Client>,
}

fn temporal(e: impl std::fmt::Display) -> TaskError {
    TaskError::Temporal(e.to_string())
}

/// The input and idempotency key every started task is checked for.
fn check_start(input: &str, idempotency_key: Option<&str>) -> Result<(), TaskError> {
    if input.trim().is_empty() {
        return Err(TaskError::validation("input", "must not be empty"));
    }
    if input.len() > 100_000 {
        return Err(TaskError::validation(
            "input",
            "must be at most 100000 bytes",
        ));
    }
    if let Some(key) = idempotency_key
        && !((1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(TaskError::validation(
            "idempotency_key",
            "must be 1 to 255 visible ASCII characters",
        ));
    }
    Ok(())
}

fn role_rank(role: Role) -> u8 {
    match role {
        Role::Owner => 0,
        Role::Admin => 1,
        Role::Editor => 2,
        Role::Viewer => 3,
    }
}

/// The schedule that runs a rule: one per rule, named after it.
fn schedule_id(rule: Uuid) -> String {
    format!("rule-{rule}")
}

impl TaskService {
    pub fn new(
        db: sqlx::PgPool,
        agents: AgentStore,
        secrets: Arc<dyn SecretStore>,
        egress: EgressPolicy,
        settings: TemporalSettings,
        timeouts: StepTimeouts,
    ) -> Result<Self, TaskError> {
        Ok(Self {
            store: TaskStore::new(db.clone()),
            agents,
            rules: RuleStore::new(db.clone()),
            crews: CrewStore::new(db),
            callbacks: CallbackSigner::new(secrets, egress)?,
            settings,
            timeouts,
            client: OnceCell::new(),
        })
    }

    pub fn settings(&self) -> &TemporalSettings {
        &self.settings
    }

    pub fn store(&self) -> &TaskStore {
        &self.store
    }

    pub fn rules(&self) -> &RuleStore {
        &self.rules
    }

    pub fn crews(&self) -> &CrewStore {
        &self.crews
    }

    /// The Temporal client, connected on first use (Brain starts while Temporal is down;
    /// `/readyz` says so).
    pub async fn client(&self) -> Result<&Client, TaskError> {
        self.client
            .get_or_try_init(|| connect(&self.settings))
            .await
    }

    fn start_options(&self, workflow_id: &str) -> WorkflowStartOptions {
        WorkflowStartOptions::new(self.settings.task_queue.clone(), workflow_id.to_owned())
            .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
            .build()
    }

    /// Starts an agent task. The same idempotency key returns the same task (409 when it was
    /// used for another agent or input).
    pub async fn start_agent_task(
        &self,
        tenant: TenantId,
        agent: Uuid,
        request: NewTask,
    ) -> Result<StartedTask, TaskError> {
        check_start(&request.input, request.idempotency_key.as_deref())?;
        if let Some(schema) = &request.output_schema {
            OutputSchema::json_schema("output", schema.clone())
                .map_err(|e| TaskError::validation("output_schema", e))?;
        }
        if let Some(url) = &request.callback_url {
            self.callbacks.check_url(url).await?;
        }
        // 404 for an unknown agent or another tenant's.
        self.agents.get(tenant, AgentId(agent)).await?;
        let task_id = Uuid::now_v7();
        let workflow_id = match &request.idempotency_key {
            Some(key) => format!("agent-task/{tenant}/{key}"),
            None => format!("agent-task/{tenant}/{task_id}"),
        };
        let mut input = json!({"input": request.input});
        if let Some(schema) = &request.output_schema {
            input["output_schema"] = schema.clone();
        }
        let mut tx = self.store.transaction(tenant).await?;
        let (task, created) = TaskStore::insert(
            &mut tx,
            tenant,
            &NewTaskRow {
                id: task_id,
                kind: TaskKind::Agent,
                agent_id: Some(agent),
                rule_id: None,
                workflow_id: &workflow_id,
                idempotency_key: request.idempotency_key.as_deref(),
                input: input.clone(),
                callback_url: request.callback_url.as_deref(),
                parent_task_id: None,
                crew_id: None,
            },
        )
        .await?;
        if !created && (task.agent_id != Some(agent) || task.input != input) {
            return Err(TaskError::IdempotencyConflict(
                request.idempotency_key.unwrap_or_default(),
            ));
        }
        let callback_secret = match (&request.callback_url, created) {
            (Some(_), true) => Some(self.callbacks.create(tenant, task.id).await?),
            _ => None,
        };
        // Started before the row commits: if Temporal refuses, no task is left behind.
        let client = self.client().await?;
        client
            .start_workflow(
                AgentTaskWorkflow::run,
                AgentTaskInput {
                    task_id: task.id,
                    tenant: tenant.0,
                    agent_id: agent,
                    input: request.input,
                    callback_url: request.callback_url,
                    parent_task: None,
                    delegates: Vec::new(),
                    timeouts: self.timeouts,
                    output_schema: request.output_schema,
                },
                self.start_options(&task.workflow_id),
            )
            .await
            .map_err(temporal)?;
        tx.commit().await?;
        Ok(StartedTask {
            task_id: task.id,
            status: task.status,
            created,
            callback_secret,
        })
    }

    /// Starts a run of a crew: a durable task (`kind: "crew"`) whose member turns are child
    /// agent tasks. The same idempotency key returns the same run.
    pub async fn start_crew_run(
        &self,
        tenant: TenantId,
        crew_id: Uuid,
        request: NewCrewRun,
    ) -> Result<StartedTask, TaskError> {
        check_start(&request.input, request.idempotency_key.as_deref())?;
        let crew: Crew = self.crews.get(tenant, crew_id).await.map_err(|e| match e {
            brain_automation::crews::CrewError::NotFound => TaskError::NotFound,
            other => TaskError::Internal(other.to_string()),
        })?;
        let task_id = Uuid::now_v7();
        let workflow_id = match &request.idempotency_key {
            Some(key) => format!("crew-run/{tenant}/{key}"),
            None => format!("crew-run/{tenant}/{task_id}"),
        };
        let input = json!({"input": request.input});
        let mut tx = self.store.transaction(tenant).await?;
        let (task, created) = TaskStore::insert(
            &mut tx,
            tenant,
            &NewTaskRow {
                id: task_id,
                kind: TaskKind::Crew,
                agent_id: None,
                rule_id: None,
                workflow_id: &workflow_id,
                idempotency_key: request.idempotency_key.as_deref(),
                input: input.clone(),
                callback_url: None,
                parent_task_id: None,
                crew_id: Some(crew.id),
            },
        )
        .await?;
        if !created && (task.kind != TaskKind::Crew.as_str() || task.input != input) {
            return Err(TaskError::IdempotencyConflict(
                request.idempotency_key.unwrap_or_default(),
            ));
        }
        let client = self.client().await?;
        client
            .start_workflow(
                CrewRunWorkflow::run,
                CrewRunInput {
                    task_id: task.id,
                    tenant: tenant.0,
                    crew_id: crew.id,
                    input: request.input,
                    parent_task: None,
                    timeouts: self.timeouts,
                },
                self.start_options(&task.workflow_id),
            )
            .await
            .map_err(temporal)?;
        tx.commit().await?;
        Ok(StartedTask {
            task_id: task.id,
            status: task.status,
            created,
            callback_secret: None,
        })
    }

    pub async fn get(&self, tenant: TenantId, id: Uuid) -> Result<TaskView, TaskError> {
        self.store.get(tenant, id).await
    }

    pub async fn list(
        &self,
        tenant: TenantId,
        filter: TaskFilter,
        limit: i64,
    ) -> Result<Vec<TaskView>, TaskError> {
        self.store.list(tenant, filter, limit).await
    }

    /// Approves or rejects a call that waits for a person. 409 when the call is not waiting.
    pub async fn decide(
        &self,
        tenant: TenantId,
        approver: &Approver,
        task_id: Uuid,
        call_id: &str,
        approve: bool,
        note: Option<String>,
    ) -> Result<(), TaskError> {
        if let Some(note) = &note
            && note.len() > 2000
        {
            return Err(TaskError::validation("note", "must be at most 2000 bytes"));
        }
        // 404 for an unknown task (or another tenant's) before anything else.
        self.store.reference(tenant, task_id).await?;
        let Some((task, detail)) = self
            .store
            .pending_approval(tenant, task_id, call_id)
            .await?
        else {
            return Err(TaskError::Conflict(format!(
                "call `{call_id}` of this task is not waiting for approval"
            )));
        };
        // A rule's approval step names the least role that may decide it.
        if let Some(required) = detail
            .get("role")
            .and_then(Value::as_str)
            .and_then(|r| r.parse::<Role>().ok())
        {
            let allowed = approver
                .role
                .is_some_and(|role| role_rank(role) <= role_rank(required));
            if !allowed {
                return Err(TaskError::Forbidden(format!(
                    "this step needs a person with the `{required}` role or above"
                )));
            }
        }
        let decision = ApprovalDecision {
            call_id: call_id.to_owned(),
            approve,
            note,
            actor: approver.actor.clone(),
        };
        let client = self.client().await?;
        let options = WorkflowSignalOptions::default();
        // The signal goes to the task that holds the call (a crew member's turn, say).
        let sent = if task.kind == TaskKind::Rule.as_str() {
            client
                .get_workflow_handle::<RuleRunWorkflow>(task.workflow_id.clone())
                .signal(RuleRunWorkflow::decide, decision, options)
                .await
        } else {
            client
                .get_workflow_handle::<AgentTaskWorkflow>(task.workflow_id.clone())
                .signal(AgentTaskWorkflow::decide, decision, options)
                .await
        };
        sent.map_err(temporal)
    }

    /// Asks the task's workflow to stop; it records `cancelled` when it does.
    pub async fn cancel(&self, tenant: TenantId, task_id: Uuid) -> Result<(), TaskError> {
        let task = self.store.reference(tenant, task_id).await?;
        if TaskStatus::parse(&task.status).is_some_and(TaskStatus::is_final) {
            return Err(TaskError::Conflict(format!(
                "the task already ended ({})",
                task.status
            )));
        }
        let client = self.client().await?;
        let options = WorkflowCancelOptions::builder()
            .reason("cancelled through the API")
            .build();
        let handle = client.get_workflow_handle::<AgentTaskWorkflow>(task.workflow_id);
        handle.cancel(options).await.map_err(temporal)
    }

    // ---- automation rules ----

    pub async fn list_rules(&self, tenant: TenantId) -> Result<Vec<Rule>, TaskError> {
        Ok(self.rules.list(tenant).await?)
    }

    pub async fn get_rule(&self, tenant: TenantId, id: Uuid) -> Result<Rule, TaskError> {
        Ok(self.rules.get(tenant, id).await?)
    }

    /// Stores the rule and, for an enabled schedule, creates its Temporal schedule in the same
    /// breath: if Temporal refuses (e.g. a cron it rejects), nothing is stored.
    pub async fn create_rule(&self, tenant: TenantId, input: RuleInput) -> Result<Rule, TaskError> {
        let mut tx = self.store.transaction(tenant).await?;
        let rule = RuleStore::create_in(&mut tx, tenant, input).await?;
        self.sync_schedule(tenant, &rule).await?;
        if let Err(e) = tx.commit().await {
            self.remove_schedule(rule.id).await;
            return Err(e.into());
        }
        Ok(rule)
    }

    pub async fn update_rule(
        &self,
        tenant: TenantId,
        id: Uuid,
        patch: RulePatch,
    ) -> Result<Rule, TaskError> {
        let mut tx = self.store.transaction(tenant).await?;
        let rule = RuleStore::update_in(&mut tx, tenant, id, patch).await?;
        self.sync_schedule(tenant, &rule).await?;
        tx.commit().await?;
        Ok(rule)
    }

    pub async fn delete_rule(&self, tenant: TenantId, id: Uuid) -> Result<Rule, TaskError> {
        let mut tx = self.store.transaction(tenant).await?;
        let rule = RuleStore::delete_in(&mut tx, tenant, id).await?;
        if rule.trigger.is_schedule() {
            // Temporal first: a schedule left behind would run a rule that no longer exists
            // (harmlessly — the run finds no rule — but visibly).
            self.client().await?;
            self.remove_schedule(rule.id).await;
        }
        tx.commit().await?;
        Ok(rule)
    }

    /// Makes Temporal's schedule match the rule: present with its cron when the rule is an
    /// enabled schedule, absent otherwise.
    async fn sync_schedule(&self, tenant: TenantId, rule: &Rule) -> Result<(), TaskError> {
        let wanted = rule.enabled && rule.trigger.is_schedule();
        if !wanted {
            if rule.trigger.is_schedule() || self.client.initialized() {
                self.client().await?;
                self.remove_schedule(rule.id).await;
            }
            return Ok(());
        }
        let TriggerKind::Schedule { cron, timezone } = &rule.trigger.kind else {
            return Ok(());
        };
        let client = self.client().await?;
        self.remove_schedule(rule.id).await;
        let spec = ScheduleSpec::builder()
            .cron_strings(vec![cron.clone()])
            .timezone_name(timezone.clone().unwrap_or_default())
            .build();
        let action = ScheduleAction::start_workflow(
            RuleRunWorkflow::run,
            RuleRunInput {
                tenant: tenant.0,
                rule_id: rule.id,
                task_id: None,
                event: json!({}),
                trigger: "schedule".into(),
                timeouts: self.timeouts,
            },
            self.settings.task_queue.clone(),
            format!("rule-run/{}/scheduled", rule.id),
        );
        let options = CreateScheduleOptions::builder()
            .action(action)
            .spec(spec)
            .note(format!("Brain rule \"{}\" (tenant {tenant})", rule.name))
            .build();
        match client.create_schedule(schedule_id(rule.id), options).await {
            Ok(_) => Ok(()),
            Err(temporalio_client::schedules::ScheduleError::Rpc(status))
                if status.code() == Code::InvalidArgument =>
            {
                Err(TaskError::validation(
                    "trigger.cron",
                    format!("Temporal refused the schedule: {}", status.message()),
                ))
            }
            Err(e) => Err(temporal(e)),
        }
    }

    /// Deletes a rule's schedule if it exists.
    async fn remove_schedule(&self, rule: Uuid) {
        let Some(client) = self.client.get() else {
            return;
        };
        let handle = client.get_schedule_handle(schedule_id(rule));
        if let Err(e) = handle.delete(DeleteScheduleOptions::default()).await {
            let missing = matches!(&e, temporalio_client::schedules::ScheduleError::Rpc(s) if s.code() == Code::NotFound);
            if !missing {
                tracing::warn!(%rule, error = %e, "could not delete a rule's schedule");
            }
        }
    }

    /// Starts a run of `rule` now (a person's "run now", whatever its trigger).
    pub async fn run_rule(
        &self,
        tenant: TenantId,
        rule_id: Uuid,
        event: Value,
    ) -> Result<StartedTask, TaskError> {
        let rule = self.rules.get(tenant, rule_id).await?;
        let task_id = Uuid::now_v7();
        let workflow_id = format!("rule-run/{}/manual-{task_id}", rule.id);
        let row_input = json!({"trigger": "manual", "event": event});
        self.start_rule_run(tenant, &rule, task_id, &workflow_id, event, row_input)
            .await
    }

    async fn start_rule_run(
        &self,
        tenant: TenantId,
        rule: &Rule,
        task_id: Uuid,
        workflow_id: &str,
        event: Value,
        row_input: Value,
    ) -> Result<StartedTask, TaskError> {
        let trigger = row_input["trigger"].as_str().unwrap_or("manual").to_owned();
        let mut tx = self.store.transaction(tenant).await?;
        let (task, created) = TaskStore::insert(
            &mut tx,
            tenant,
            &NewTaskRow {
                id: task_id,
                kind: TaskKind::Rule,
                agent_id: None,
                rule_id: Some(rule.id),
                workflow_id,
                idempotency_key: None,
                input: row_input,
                callback_url: None,
                parent_task_id: None,
                crew_id: None,
            },
        )
        .await?;
        let client = self.client().await?;
        client
            .start_workflow(
                RuleRunWorkflow::run,
                RuleRunInput {
                    tenant: tenant.0,
                    rule_id: rule.id,
                    task_id: Some(task.id),
                    event,
                    trigger,
                    timeouts: self.timeouts,
                },
                self.start_options(workflow_id),
            )
            .await
            .map_err(temporal)?;
        tx.commit().await?;
        Ok(StartedTask {
            task_id: task.id,
            status: task.status,
            created,
            callback_secret: None,
        })
    }

    /// Runs every enabled rule whose trigger is this event and whose conditions hold. A
    /// delivery fires each rule at most once, however often it is dispatched.
    pub async fn dispatch_event(
        &self,
        tenant: TenantId,
        event: &EventDelivery,
    ) -> Result<Vec<StartedTask>, TaskError> {
        let rules = self.rules.enabled_for_event(tenant, &event.name).await?;
        let mut started = Vec::new();
        for rule in rules
            .iter()
            .filter(|r| matches(&r.trigger.conditions, &event.payload))
        {
            let workflow_id = format!("rule-run/{}/{}", rule.id, event.delivery);
            let run = self
                .start_rule_run(
                    tenant,
                    rule,
                    Uuid::now_v7(),
                    &workflow_id,
                    event.payload.clone(),
                    json!({"trigger": "event", "event_name": event.name,
                           "delivery": event.delivery, "event": event.payload}),
                )
                .await?;
            started.push(run);
        }
        Ok(started)
    }
}
