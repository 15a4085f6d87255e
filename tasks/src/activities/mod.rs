//! The activities of the durable workflows: everything that touches the world. Each is
//! safe to run again — steps are keyed by position, connector writes carry an idempotency
//! key derived from the workflow id and the step, and bookkeeping writes are upserts.

use std::sync::Arc;
use std::time::Duration;

use brain_agents::conversation::TurnStore;
use brain_agents::knowledge::Retriever;
use brain_agents::spec::AgentId;
use brain_agents::{AgentError, AgentStore, ProviderRegistry, TurnLimits};
use brain_auth::TenantId;
use brain_auth::audit::{self, AuditEvent};
use brain_tools::{ConnectorService, ToolError};
use serde_json::Value;
use temporalio_macros::activities;
use temporalio_sdk::ApplicationFailure;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use uuid::Uuid;

use super::callback::CallbackSigner;
use super::error::TaskError;
use super::events::{RunEvent, RunEvents};
use super::metrics::TaskMetrics;
use super::model::{
    AgentTaskInput, CallbackInput, CrewPlan, CrewRunInput, LlmStepInput, LlmStepOutput,
    RuleActionInput, RulePlan, RuleRunInput, StepNote, StepRecord, TaskKind, TaskOutcome, TaskPlan,
    TaskStatus, ToolStepInput, ToolStepOutput,
};
use super::store::TaskStore;
use brain_automation::crews::CrewStore;
use brain_automation::rules::RuleStore;

mod agent;
mod automation;
mod end;

/// What the activities run with. One per worker.
pub struct TaskActivities {
    store: TaskStore,
    agents: AgentStore,
    turns: Arc<dyn TurnStore>,
    providers: ProviderRegistry,
    connectors: Arc<ConnectorService>,
    retriever: Option<Arc<dyn Retriever>>,
    rules: RuleStore,
    crews: CrewStore,
    callbacks: CallbackSigner,
    limits: TurnLimits,
    metrics: Option<TaskMetrics>,
    events: Option<RunEvents>,
    runtime: Option<brain_runtime::RuntimeHandle>,
}

/// Everything the activities need, assembled by the composition root (or a test).
pub struct TaskDeps {
    /// The RLS-bound pool.
    pub db: sqlx::PgPool,
    pub agents: AgentStore,
    pub turns: Arc<dyn TurnStore>,
    pub providers: ProviderRegistry,
    pub connectors: Arc<ConnectorService>,
    pub retriever: Option<Arc<dyn Retriever>>,
    pub secrets: Arc<dyn brain_auth::secrets::SecretStore>,
    pub limits: TurnLimits,
    pub metrics: Option<TaskMetrics>,
    /// Where run events go for live watchers (SSE on any gateway instance).
    pub events: Option<RunEvents>,
    /// The actor tree, for delegations (another agent's turn runs there).
    pub runtime: Option<brain_runtime::RuntimeHandle>,
}

impl TaskActivities {
    pub fn new(deps: TaskDeps) -> Result<Self, TaskError> {
        let callbacks = CallbackSigner::new(deps.secrets, deps.connectors.egress().clone())?;
        Ok(Self {
            store: TaskStore::new(deps.db.clone()),
            crews: CrewStore::new(deps.db.clone()),
            events: deps.events,
            runtime: deps.runtime,
            rules: RuleStore::new(deps.db),
            agents: deps.agents,
            turns: deps.turns,
            providers: deps.providers,
            connectors: deps.connectors,
            retriever: deps.retriever,
            callbacks,
            limits: deps.limits,
            metrics: deps.metrics,
        })
    }
}

/// A failure Temporal retries (infrastructure hiccups).
fn transient(e: impl std::fmt::Display) -> ActivityError {
    ActivityError::application(ApplicationFailure::new(e.to_string()))
}

/// A failure no retry can fix (bad input, a refused budget).
fn permanent(e: impl std::fmt::Display) -> ActivityError {
    ActivityError::application(ApplicationFailure::non_retryable(e.to_string()))
}

fn task_error(e: TaskError) -> ActivityError {
    match e {
        TaskError::Database(_) | TaskError::Temporal(_) | TaskError::Secrets(_) => transient(e),
        TaskError::Audit(_) | TaskError::Internal(_) => transient(e),
        other => permanent(other),
    }
}

fn agent_error(e: AgentError) -> ActivityError {
    match e {
        AgentError::Database(_) | AgentError::Provider(_) => transient(e),
        other => permanent(other),
    }
}

/// Whether a connector error says the infrastructure hiccupped (retry the activity) rather
/// than how the call went (tell the model).
fn infrastructure(e: &ToolError) -> bool {
    matches!(
        e,
        ToolError::Database(_)
            | ToolError::Cache(_)
            | ToolError::Secrets(_)
            | ToolError::IdempotencyInProgress(_)
    )
}

/// Runs `work`, heartbeating so Temporal notices a dead worker within the heartbeat timeout.
async fn with_heartbeats<T>(
    ctx: &ActivityContext,
    work: impl std::future::Future<Output = T>,
) -> T {
    let every = ctx
        .info()
        .heartbeat_timeout
        .map_or(Duration::from_secs(10), |t| {
            (t / 3).max(Duration::from_millis(200))
        });
    tokio::pin!(work);
    loop {
        tokio::select! {
            out = &mut work => return out,
            () = tokio::time::sleep(every) => {
                let _ = ctx.record_heartbeat(()).await;
            }
        }
    }
}

impl TaskActivities {
    async fn record(
        &self,
        tenant: Uuid,
        task: Uuid,
        step: &StepRecord,
        status: Option<TaskStatus>,
    ) -> Result<(), ActivityError> {
        let parent = self
            .store
            .record_step(TenantId(tenant), task, step, status)
            .await
            .map_err(task_error)?;
        if let Some(events) = &self.events {
            let streams: Vec<Uuid> = std::iter::once(task).chain(parent).collect();
            let step = RunEvent::Step {
                task_id: task,
                step: step.clone(),
            };
            events.publish(&streams, &step).await;
            if let Some(status) = status {
                let event = RunEvent::Status {
                    task_id: task,
                    status,
                };
                events.publish(&streams, &event).await;
            }
        }
        Ok(())
    }

    /// What the first start of a task makes known: a metric, a run event, an audit event.
    async fn started(
        &self,
        tenant: TenantId,
        task: Uuid,
        kind: TaskKind,
        action: &'static str,
        details: Value,
    ) -> Result<(), ActivityError> {
        if let Some(m) = &self.metrics {
            m.started.with_label_values(&[kind.as_str()]).inc();
        }
        let status = RunEvent::Status {
            task_id: task,
            status: TaskStatus::Running,
        };
        self.announce(tenant, task, status).await;
        self.audit(
            tenant,
            AuditEvent {
                actor_kind: "system",
                actor_id: "tasks".into(),
                action,
                resource: format!("tasks/{task}"),
                details,
            },
        )
        .await
    }

    async fn announce(&self, tenant: TenantId, task: Uuid, event: RunEvent) {
        if let Some(events) = &self.events {
            let parent = self.store.parent(tenant, task).await.ok().flatten();
            let streams: Vec<Uuid> = std::iter::once(task).chain(parent).collect();
            events.publish(&streams, &event).await;
        }
    }

    async fn audit(&self, tenant: TenantId, event: AuditEvent<'_>) -> Result<(), ActivityError> {
        let mut tx = self.store.transaction(tenant).await.map_err(task_error)?;
        audit::append(&mut tx, tenant, event)
            .await
            .map_err(transient)?;
        tx.commit().await.map_err(transient)?;
        Ok(())
    }
}

#[activities]
impl TaskActivities {
    /// Creates or starts the task row and fixes what the agent runs with: its spec now, the
    /// tools its grants allow now, and the knowledge its input retrieves.
    #[activity]
    pub async fn begin_agent_task(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: AgentTaskInput,
    ) -> Result<TaskPlan, ActivityError> {
        self.plan_agent_task(ctx, input).await
    }

    /// One model call; its answer (text or tool calls) and usage are recorded as a step.
    #[activity]
    pub async fn llm_step(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: LlmStepInput,
    ) -> Result<LlmStepOutput, ActivityError> {
        self.run_llm_step(ctx, input).await
    }

    /// One tool call through a capability minted now from the stored grants, so a grant
    /// revoked while the task waited fails here. The outcome is what the model is told.
    #[activity]
    pub async fn tool_step(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: ToolStepInput,
    ) -> Result<ToolStepOutput, ActivityError> {
        self.run_tool_step(ctx, input).await
    }

    /// Writes a step the workflow decided (approvals, refusals) and the task's status; a
    /// refused delegation is also audited (after the step: a retry rewrites the same step).
    #[activity]
    pub async fn record_step(
        self: Arc<Self>,
        _ctx: ActivityContext,
        note: StepNote,
    ) -> Result<(), ActivityError> {
        self.record(note.tenant, note.task_id, &note.step, note.task_status)
            .await?;
        match (&self.runtime, &note.refused) {
            (Some(runtime), Some(refused)) => runtime
                .audit_refused_delegation(
                    TenantId(note.tenant),
                    AgentId(refused.agent_id),
                    &refused.call,
                    &refused.why,
                )
                .await
                .map_err(transient),
            _ => Ok(()),
        }
    }

    /// Writes how the task ended, its usage, and its audit event.
    #[activity]
    pub async fn finish_task(
        self: Arc<Self>,
        _ctx: ActivityContext,
        outcome: TaskOutcome,
    ) -> Result<(), ActivityError> {
        self.write_end(outcome).await
    }

    /// POSTs the finished task to its `callback_url`, signed like Brain's webhooks
    /// (`X-Brain-Signature: sha256=HMAC(secret, "{timestamp}.{body}")`).
    #[activity]
    pub async fn deliver_callback(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: CallbackInput,
    ) -> Result<(), ActivityError> {
        self.send_callback(ctx, input).await
    }

    /// Starts a crew run: its task row, and the crew as it is now — members by name, and who
    /// does which task.
    #[activity]
    pub async fn begin_crew_run(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: CrewRunInput,
    ) -> Result<CrewPlan, ActivityError> {
        self.plan_crew_run(ctx, input).await
    }

    /// Starts a rule run: the task row (a schedule's run has none yet) and the rule as it is
    /// now; a rule disabled or deleted since it fired runs nothing.
    #[activity]
    pub async fn begin_rule_run(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: RuleRunInput,
    ) -> Result<RulePlan, ActivityError> {
        self.plan_rule_run(ctx, input).await
    }

    /// A rule's connector action: arguments rendered from the event and earlier outputs, then
    /// run with the workflow's idempotency key. The rule, created by an admin, is the grant.
    #[activity]
    pub async fn rule_action(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: RuleActionInput,
    ) -> Result<Value, ActivityError> {
        self.run_rule_action(ctx, input).await
    }
}
