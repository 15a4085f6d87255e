//! The activities of the durable workflows: everything that touches the world. Each is
//! safe to run again — steps are keyed by position, connector writes carry an idempotency
//! key derived from the workflow id and the step, and bookkeeping writes are upserts.

use std::sync::Arc;
use std::time::Duration;

use brain_agents::conversation::TurnStore;
use brain_agents::knowledge::{Citation, Passage, Retriever};
use brain_agents::prompt::system_prompt;
use brain_agents::providers::{ChatMessage, ChatRequest, ModelReply, Usage};
use brain_agents::spec::{AgentId, ModelRef};
use brain_agents::tool::{call_label, delegate_target};
use brain_agents::{AgentError, AgentStore, ProviderRegistry, TurnLimits, check_budgets};
use brain_auth::TenantId;
use brain_auth::audit::{self, AuditEvent};
use brain_tools::{ConnectorService, ToolError};
use serde_json::{Value, json};
use temporalio_macros::activities;
use temporalio_sdk::ApplicationFailure;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use uuid::Uuid;

use super::callback::CallbackSigner;
use super::error::TaskError;
use super::events::{RunEvent, RunEvents};
use super::metrics::TaskMetrics;
use super::model::{
    AgentTaskInput, CallbackInput, CrewMember, CrewPlan, CrewPlanTask, CrewRunInput, LlmStepInput,
    LlmStepOutput, RuleActionInput, RulePlan, RuleRunInput, StepKind, StepNote, StepRecord,
    StepStatus, TaskKind, TaskOutcome, TaskPlan, TaskStatus, ToolStepInput, ToolStepOutput,
};
use super::store::{NewTaskRow, TaskStore};
use crate::crews::CrewStore;
use crate::rules::{RuleStore, render_args};
use crate::tools::CapabilityInvoker;

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
    runtime: Option<crate::RuntimeHandle>,
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
    pub runtime: Option<crate::RuntimeHandle>,
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

    /// A delegation step: `slug`'s own turn in the actor tree, with every delegation check
    /// the runtime makes (the grant — or the run's —, cycles, depth, limits, approval).
    async fn delegation_step(
        &self,
        ctx: &ActivityContext,
        input: &ToolStepInput,
        slug: &str,
    ) -> Result<ToolStepOutput, ActivityError> {
        let tenant = TenantId(input.tenant);
        let mut step = StepRecord {
            seq: input.seq,
            kind: StepKind::Tool,
            status: StepStatus::Running,
            call_id: Some(input.call.id.clone()),
            connector: Some(brain_agents::tool::DELEGATE_CONNECTOR.to_owned()),
            action: Some(slug.to_owned()),
            detail: json!({"args": input.call.arguments, "approved_by": input.approved_by}),
            error: None,
        };
        self.record(input.tenant, input.task_id, &step, None)
            .await?;
        let refuse = |e: &dyn std::fmt::Display, code: &str| ToolStepOutput {
            ok: false,
            fed_back: json!({"error": code, "message": e.to_string()}).to_string(),
        };
        let outcome = match (&self.runtime, self.agents.get_by_slug(tenant, slug).await) {
            (None, _) => Err(refuse(
                &"this worker cannot run delegations",
                "tool_not_granted",
            )),
            (_, Err(AgentError::NotFound)) => Err(refuse(
                &format!("no agent `{slug}` in this organisation"),
                "tool_not_granted",
            )),
            (_, Err(e)) => return Err(agent_error(e)),
            (Some(runtime), Ok(target)) => {
                let args = &input.call.arguments;
                let question = args["question"].as_str().unwrap_or_default().to_owned();
                let mut request =
                    crate::DelegationRequest::new(AgentId(input.agent_id), target.id, question);
                if let Some(context) = args["context"].as_str() {
                    request = request.with_context(context);
                }
                request.approved = input.approved_by.is_some();
                request.prior_calls = input.prior_calls;
                request.run_grant = input.run_grant;
                match with_heartbeats(ctx, runtime.delegate(tenant, request)).await {
                    Ok(outcome) => Ok(outcome),
                    Err(crate::RuntimeError::Agent(AgentError::Tool(e))) => {
                        Err(refuse(&e, e.code()))
                    }
                    Err(crate::RuntimeError::Agent(AgentError::Validation(v))) => {
                        Err(refuse(&v, "invalid_arguments"))
                    }
                    Err(e) => return Err(transient(e)),
                }
            }
        };
        match outcome {
            Ok(outcome) => {
                step.status = StepStatus::Succeeded;
                step.detail = json!({"answer": outcome.answer, "nested": outcome.tool_calls,
                                     "conversation_id": outcome.conversation_id});
                self.record(input.tenant, input.task_id, &step, None)
                    .await?;
                Ok(ToolStepOutput {
                    ok: true,
                    fed_back: json!({"agent": outcome.target_slug, "answer": outcome.answer})
                        .to_string(),
                })
            }
            Err(refused) => {
                step.status = StepStatus::Failed;
                step.error = Some(refused.fed_back.clone());
                self.record(input.tenant, input.task_id, &step, None)
                    .await?;
                Ok(refused)
            }
        }
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
        let tenant = TenantId(input.tenant);
        let workflow_id = ctx.info().workflow_id.clone().unwrap_or_default();
        let (task, first) = self
            .store
            .start(
                tenant,
                &NewTaskRow {
                    id: input.task_id,
                    kind: TaskKind::Agent,
                    agent_id: Some(input.agent_id),
                    rule_id: None,
                    workflow_id: &workflow_id,
                    idempotency_key: None,
                    input: json!({"input": input.input, "parent_task": input.parent_task}),
                    callback_url: input.callback_url.as_deref(),
                    parent_task_id: input.parent_task,
                    crew_id: None,
                },
            )
            .await
            .map_err(task_error)?;
        if first {
            let details = json!({"agent_id": input.agent_id, "workflow_id": workflow_id,
                                 "parent_task": input.parent_task});
            self.started(tenant, task, TaskKind::Agent, "task.start", details)
                .await?;
        }
        let agent = self
            .agents
            .get(tenant, AgentId(input.agent_id))
            .await
            .map_err(agent_error)?;
        // Budgets are checked by every model step (the first comes next), which records the
        // refusal as a step with its code, as a chat turn reports it.
        let capabilities = self
            .connectors
            .capabilities(tenant, input.agent_id)
            .await
            .map_err(transient)?;
        let (mut tools, rules) =
            CapabilityInvoker::new(&self.connectors, &capabilities).into_parts();
        let mut approval: Vec<String> = rules.approval.into_iter().collect();
        approval.sort();
        let mut call_limits = rules.call_limits;
        // Other agents it may ask: its own delegate grants, and whom the run lets it ask.
        let mut run_granted = Vec::new();
        if let Some(runtime) = &self.runtime {
            let granted = runtime
                .delegation_tools(tenant, AgentId(input.agent_id))
                .await
                .map_err(transient)?;
            for d in granted {
                if d.approval == brain_agents::spec::Approval::Always {
                    approval.push(d.definition.name.clone());
                }
                if let Some(max) = d.max_calls_per_run {
                    call_limits.insert(d.definition.name.clone(), max);
                }
                tools.push(d.definition);
            }
            for target in &input.delegates {
                let d = crate::delegation::run_granted_tool(&self.agents, tenant, AgentId(*target))
                    .await
                    .map_err(agent_error)?;
                if !tools.iter().any(|t| t.name == d.definition.name) {
                    run_granted.push(d.definition.name.clone());
                    tools.push(d.definition);
                }
            }
        }
        let passages: Vec<Passage> = match &self.retriever {
            Some(r)
                if !agent.knowledge_collections.is_empty()
                    && self.limits.knowledge_passages > 0 =>
            {
                brain_agents::knowledge::retrieve(
                    r.as_ref(),
                    tenant,
                    &agent.knowledge_collections,
                    &input.input,
                    self.limits.knowledge_passages,
                )
                .await
                .map_err(transient)?
            }
            _ => Vec::new(),
        };
        // Fitted into the model's window like a chat turn (a task has no history): the
        // lowest-ranked passages go first; an input too long on its own fails for good.
        let user = ChatMessage::user(input.input.clone());
        let window = self
            .providers
            .resolve(&agent.model)
            .ok()
            .and_then(|p| p.context_window(agent.model.model()));
        let mut passages = passages;
        if let Some(window) = window {
            let system_for = |p: &[Passage]| system_prompt(&agent, &tools, p);
            let parts = brain_agents::fit::PromptParts {
                window,
                reply_tokens: agent.max_tokens as usize,
                system: &system_for,
                passages: &passages,
                history: &[],
                current: std::slice::from_ref(&user),
                tools: &tools,
            };
            let fitted = brain_agents::fit::fit(&parts, None).map_err(|e| {
                permanent(brain_agents::ProviderError::ContextTooLong {
                    needed: e.needed,
                    budget: e.budget,
                })
            })?;
            passages.truncate(fitted.passages);
        }
        let citations: Vec<Citation> = passages.iter().map(|p| p.citation.clone()).collect();
        Ok(TaskPlan {
            model: format!("{}:{}", agent.model.provider(), agent.model.model()),
            temperature: agent.temperature.get(),
            max_tokens: agent.max_tokens,
            messages: vec![
                ChatMessage::system(system_prompt(&agent, &tools, &passages)),
                user,
            ],
            tools,
            approval,
            call_limits,
            run_granted,
            max_steps: u32::try_from(self.limits.max_steps).unwrap_or(u32::MAX),
            citations: serde_json::to_value(citations).unwrap_or(Value::Null),
        })
    }

    /// One model call; its answer (text or tool calls) and usage are recorded as a step.
    #[activity]
    pub async fn llm_step(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: LlmStepInput,
    ) -> Result<LlmStepOutput, ActivityError> {
        let tenant = TenantId(input.tenant);
        let agent = AgentId(input.agent_id);
        let mut step = StepRecord {
            seq: input.seq,
            kind: StepKind::Llm,
            status: StepStatus::Running,
            call_id: None,
            connector: None,
            action: None,
            detail: json!({"model": input.model, "attempt": ctx.info().attempt}),
            error: None,
        };
        self.record(input.tenant, input.task_id, &step, None)
            .await?;
        let spec = self.agents.get(tenant, agent).await.map_err(agent_error)?;
        match check_budgets(self.turns.as_ref(), tenant, &spec).await {
            Ok(()) => {}
            Err(refused @ (AgentError::BudgetExhausted | AgentError::TenantBudgetExhausted)) => {
                step.status = StepStatus::Failed;
                step.detail["refused"] = json!(refused.code());
                step.error = Some(refused.to_string());
                self.record(input.tenant, input.task_id, &step, None)
                    .await?;
                return Err(permanent(refused));
            }
            Err(other) => return Err(agent_error(other)),
        }
        let model: ModelRef = input.model.parse().map_err(permanent)?;
        let provider = self.providers.resolve(&model).map_err(permanent)?;
        let request = ChatRequest {
            tenant,
            model: model.model().to_owned(),
            messages: input.messages,
            tools: input.tools,
            temperature: input.temperature,
            max_tokens: input.max_tokens,
        };
        let reply: ModelReply = tokio::select! {
            reply = provider.complete(request) => reply.map_err(|e| match e {
                // The prompt grew past the window (large tool results): no retry fits it.
                brain_agents::ProviderError::ContextTooLong { .. } => permanent(e),
                e => transient(format!("model call failed: {e}")),
            })?,
            () = ctx.cancelled() => return Err(ActivityError::cancelled()),
        };
        self.turns
            .record_usage(tenant, agent, reply.usage, 0)
            .await
            .map_err(agent_error)?;
        step.status = StepStatus::Succeeded;
        step.detail = json!({
            "content": reply.content,
            "tool_calls": reply.tool_calls.iter().map(|c| json!({"id": c.id, "name": c.name})).collect::<Vec<_>>(),
            "usage": reply.usage,
        });
        self.record(input.tenant, input.task_id, &step, None)
            .await?;
        Ok(LlmStepOutput {
            content: reply.content,
            tool_calls: reply.tool_calls,
            usage: reply.usage,
        })
    }

    /// One tool call through a capability minted now from the stored grants, so a grant
    /// revoked while the task waited fails here. The outcome is what the model is told.
    #[activity]
    pub async fn tool_step(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: ToolStepInput,
    ) -> Result<ToolStepOutput, ActivityError> {
        let tenant = TenantId(input.tenant);
        if let Some(slug) = delegate_target(&input.call.name) {
            return self.delegation_step(&ctx, &input, slug).await;
        }
        let (connector, action) = call_label(&input.call.name);
        let mut step = StepRecord {
            seq: input.seq,
            kind: StepKind::Tool,
            status: StepStatus::Running,
            call_id: Some(input.call.id.clone()),
            connector: Some(connector.to_owned()),
            action: Some(action.to_owned()),
            detail: json!({"args": input.call.arguments, "attempt": ctx.info().attempt,
                           "approved_by": input.approved_by}),
            error: None,
        };
        self.record(input.tenant, input.task_id, &step, None)
            .await?;
        let capabilities = self
            .connectors
            .capabilities(tenant, input.agent_id)
            .await
            .map_err(transient)?;
        let outcome = match capabilities.iter().find(|c| c.connector() == connector) {
            None => Err(ToolError::GrantRevoked {
                connector: connector.to_owned(),
            }),
            Some(cap) if cap.requires_approval() && input.approved_by.is_none() => {
                Err(ToolError::ActionNotGranted {
                    connector: connector.to_owned(),
                    action: format!("{action} (without approval)"),
                })
            }
            Some(cap) => {
                let call = self.connectors.invoke_attempt(
                    cap,
                    action,
                    input.call.arguments.clone(),
                    Some(&input.idempotency_key),
                    ctx.info().attempt > 1,
                );
                with_heartbeats(&ctx, call).await
            }
        };
        let outcome_label = match &outcome {
            Ok(_) => "ok",
            Err(_) => "error",
        };
        if let Some(m) = &self.metrics {
            m.tool_calls
                .with_label_values(&[connector, action, outcome_label])
                .inc();
        }
        match outcome {
            Ok(result) => {
                let summary: String = result.to_string().chars().take(200).collect();
                step.status = StepStatus::Succeeded;
                step.detail = json!({"summary": summary});
                self.record(input.tenant, input.task_id, &step, None)
                    .await?;
                self.turns
                    .record_usage(tenant, AgentId(input.agent_id), Usage::default(), 1)
                    .await
                    .map_err(agent_error)?;
                Ok(ToolStepOutput {
                    ok: true,
                    fed_back: json!({"summary": summary, "result": result}).to_string(),
                })
            }
            Err(e) if infrastructure(&e) => Err(transient(e)),
            Err(e) => {
                step.status = StepStatus::Failed;
                step.error = Some(e.to_string());
                self.record(input.tenant, input.task_id, &step, None)
                    .await?;
                Ok(ToolStepOutput {
                    ok: false,
                    fed_back: json!({"error": e.code(), "message": e.to_string()}).to_string(),
                })
            }
        }
    }

    /// Writes a step the workflow decided (approvals, refusals) and the task's status.
    #[activity]
    pub async fn record_step(
        self: Arc<Self>,
        _ctx: ActivityContext,
        note: StepNote,
    ) -> Result<(), ActivityError> {
        self.record(note.tenant, note.task_id, &note.step, note.task_status)
            .await
    }

    /// Writes how the task ended, its usage, and its audit event.
    #[activity]
    pub async fn finish_task(
        self: Arc<Self>,
        _ctx: ActivityContext,
        outcome: TaskOutcome,
    ) -> Result<(), ActivityError> {
        let tenant = TenantId(outcome.tenant);
        let usage = outcome.usage.map(|u| json!(u));
        let mut tx = self.store.transaction(tenant).await.map_err(task_error)?;
        let kind: Option<(String, Option<Uuid>, String)> = sqlx::query_as(
            "SELECT kind, agent_id, status FROM tasks WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.0)
        .bind(outcome.task_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(transient)?;
        let Some((kind, agent_id, previous)) = kind else {
            return Err(permanent(TaskError::NotFound));
        };
        // A retried finish after a commit must not count the task twice.
        let already = TaskStatus::parse(&previous).is_some_and(TaskStatus::is_final);
        TaskStore::finish(
            &mut tx,
            tenant,
            outcome.task_id,
            outcome.status,
            outcome.output.as_ref(),
            outcome.error.as_deref(),
            usage.as_ref(),
        )
        .await
        .map_err(task_error)?;
        if !already {
            sqlx::query(
                "INSERT INTO usage (tenant_id, day, agent_id, tasks) \
                 VALUES ($1, (now() AT TIME ZONE 'utc')::date, $2, 1) \
                 ON CONFLICT (tenant_id, day, agent_id) DO UPDATE SET tasks = usage.tasks + 1",
            )
            .bind(tenant.0)
            .bind(agent_id)
            .execute(&mut *tx)
            .await
            .map_err(transient)?;
            audit::append(
                &mut tx,
                tenant,
                AuditEvent {
                    actor_kind: "system",
                    actor_id: "tasks".into(),
                    action: "task.end",
                    resource: format!("tasks/{}", outcome.task_id),
                    details: json!({"status": outcome.status, "error": outcome.error,
                                    "tool_calls": outcome.tool_calls, "usage": usage}),
                },
            )
            .await
            .map_err(transient)?;
        }
        tx.commit().await.map_err(transient)?;
        if !already && let Some(m) = &self.metrics {
            m.finished
                .with_label_values(&[&kind, outcome.status.as_str()])
                .inc();
        }
        self.announce(
            tenant,
            outcome.task_id,
            RunEvent::Done {
                task_id: outcome.task_id,
                status: outcome.status,
            },
        )
        .await;
        Ok(())
    }

    /// POSTs the finished task to its `callback_url`, signed like Brain's webhooks
    /// (`X-Brain-Signature: sha256=HMAC(secret, "{timestamp}.{body}")`).
    #[activity]
    pub async fn deliver_callback(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: CallbackInput,
    ) -> Result<(), ActivityError> {
        let tenant = TenantId(input.tenant);
        let task = self
            .store
            .get(tenant, input.task_id)
            .await
            .map_err(task_error)?;
        let attempt = ctx.info().attempt;
        let last_attempt = ctx
            .info()
            .retry_policy
            .as_ref()
            .map(|p| p.maximum_attempts())
            .is_some_and(|max| max > 0 && attempt >= max);
        match self.callbacks.deliver(tenant, &input.url, &task).await {
            Ok(()) => {
                self.store
                    .set_callback_status(tenant, input.task_id, "delivered")
                    .await
                    .map_err(task_error)?;
                Ok(())
            }
            Err((retryable, message)) => {
                if !retryable || last_attempt {
                    self.store
                        .set_callback_status(tenant, input.task_id, "failed")
                        .await
                        .map_err(task_error)?;
                }
                if retryable {
                    Err(transient(message))
                } else {
                    Err(permanent(message))
                }
            }
        }
    }

    /// Starts a crew run: its task row, and the crew as it is now — members by name, and who
    /// does which task.
    #[activity]
    pub async fn begin_crew_run(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: CrewRunInput,
    ) -> Result<CrewPlan, ActivityError> {
        let tenant = TenantId(input.tenant);
        let workflow_id = ctx.info().workflow_id.clone().unwrap_or_default();
        let crew = match self.crews.get(tenant, input.crew_id).await {
            Ok(crew) => crew,
            Err(crate::crews::CrewError::NotFound) => {
                return Err(permanent("the crew no longer exists"));
            }
            Err(e) => return Err(transient(e)),
        };
        let (task, first) = self
            .store
            .start(
                tenant,
                &NewTaskRow {
                    id: input.task_id,
                    kind: TaskKind::Crew,
                    agent_id: None,
                    rule_id: None,
                    workflow_id: &workflow_id,
                    idempotency_key: None,
                    input: json!({"input": input.input}),
                    callback_url: None,
                    parent_task_id: input.parent_task,
                    crew_id: Some(crew.id),
                },
            )
            .await
            .map_err(task_error)?;
        if first {
            let details = json!({"crew_id": crew.id, "process": crew.process,
                                 "workflow_id": workflow_id, "parent_task": input.parent_task});
            self.started(tenant, task, TaskKind::Crew, "task.start", details)
                .await?;
        }
        let member = |id: Uuid| {
            let agents = self.agents.clone();
            async move {
                let spec = agents.get(tenant, AgentId(id)).await?;
                Ok::<_, AgentError>(CrewMember {
                    agent_id: id,
                    name: spec.name,
                    slug: spec.slug.to_string(),
                    role: spec.role.as_str().to_owned(),
                })
            }
        };
        let mut members = Vec::with_capacity(crew.members.len());
        for id in &crew.members {
            members.push(member(*id).await.map_err(|e| match e {
                AgentError::NotFound => permanent(format!("crew member {id} no longer exists")),
                other => agent_error(other),
            })?);
        }
        let manager = match crew.manager_agent_id {
            Some(id) => Some(member(id).await.map_err(agent_error)?),
            None => None,
        };
        let tasks = (0..crew.tasks.len())
            .filter_map(|i| {
                let t = &crew.tasks[i];
                crew.assignee(i).map(|agent_id| CrewPlanTask {
                    description: t.description.clone(),
                    expected_output: t.expected_output.clone(),
                    agent_id,
                })
            })
            .collect();
        Ok(CrewPlan {
            task_id: task,
            name: crew.name,
            process: crew.process,
            manager,
            members,
            tasks,
        })
    }

    /// Starts a rule run: the task row (a schedule's run has none yet) and the rule as it is
    /// now; a rule disabled or deleted since it fired runs nothing.
    #[activity]
    pub async fn begin_rule_run(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: RuleRunInput,
    ) -> Result<RulePlan, ActivityError> {
        let tenant = TenantId(input.tenant);
        let workflow_id = ctx.info().workflow_id.clone().unwrap_or_default();
        let rule = match self.rules.get(tenant, input.rule_id).await {
            Ok(rule) => Some(rule),
            Err(crate::rules::RuleError::NotFound) => None,
            Err(e) => return Err(transient(e)),
        };
        let (task, first) = self
            .store
            .start(
                tenant,
                &NewTaskRow {
                    id: input.task_id.unwrap_or_else(Uuid::now_v7),
                    kind: TaskKind::Rule,
                    agent_id: None,
                    rule_id: rule.as_ref().map(|r| r.id),
                    workflow_id: &workflow_id,
                    idempotency_key: None,
                    input: json!({"trigger": input.trigger, "event": input.event}),
                    callback_url: None,
                    parent_task_id: None,
                    crew_id: None,
                },
            )
            .await
            .map_err(task_error)?;
        if first {
            let details = json!({"rule_id": input.rule_id, "trigger": input.trigger,
                                 "workflow_id": workflow_id});
            self.started(tenant, task, TaskKind::Rule, "rule.run", details)
                .await?;
        }
        Ok(match rule {
            Some(rule) if rule.enabled || input.trigger == "manual" => RulePlan {
                task_id: task,
                rule_name: rule.name,
                steps: Some(rule.steps),
            },
            Some(rule) => RulePlan {
                task_id: task,
                rule_name: rule.name,
                steps: None,
            },
            None => RulePlan {
                task_id: task,
                rule_name: String::new(),
                steps: None,
            },
        })
    }

    /// A rule's connector action: arguments rendered from the event and earlier outputs, then
    /// run with the workflow's idempotency key. The rule, created by an admin, is the grant.
    #[activity]
    pub async fn rule_action(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: RuleActionInput,
    ) -> Result<Value, ActivityError> {
        let tenant = TenantId(input.tenant);
        let mut step = StepRecord {
            seq: input.seq,
            kind: StepKind::Action,
            status: StepStatus::Running,
            call_id: None,
            connector: Some(input.connector.clone()),
            action: Some(input.action.clone()),
            detail: json!({"attempt": ctx.info().attempt}),
            error: None,
        };
        self.record(input.tenant, input.task_id, &step, None)
            .await?;
        let args = match render_args(&input.args, &input.context) {
            Ok(args) => args,
            Err(e) => {
                step.status = StepStatus::Failed;
                step.error = Some(e.to_string());
                self.record(input.tenant, input.task_id, &step, None)
                    .await?;
                return Err(permanent(e));
            }
        };
        let call = self.connectors.action_attempt(
            tenant,
            &input.connector,
            &input.action,
            args.clone(),
            Some(&input.idempotency_key),
            ctx.info().attempt > 1,
        );
        let outcome = with_heartbeats(&ctx, call).await;
        let arg_names: Vec<String> = args
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        match outcome {
            Err(e) if infrastructure(&e) => Err(transient(e)),
            outcome => {
                let code = match &outcome {
                    Ok(_) => "ok",
                    Err(e) => e.code(),
                };
                self.audit(
                    tenant,
                    AuditEvent {
                        actor_kind: "system",
                        actor_id: format!("rule/{}", input.rule_id),
                        action: "tool.call",
                        resource: format!(
                            "connectors/{}/actions/{}",
                            input.connector, input.action
                        ),
                        details: json!({"args": arg_names, "outcome": code,
                                        "task_id": input.task_id,
                                        "idempotency_key": input.idempotency_key}),
                    },
                )
                .await?;
                match outcome {
                    Ok(result) => {
                        step.status = StepStatus::Succeeded;
                        step.detail = json!({"args": args, "output": result});
                        self.record(input.tenant, input.task_id, &step, None)
                            .await?;
                        Ok(result)
                    }
                    Err(e) => {
                        step.status = StepStatus::Failed;
                        step.detail = json!({"args": args});
                        step.error = Some(e.to_string());
                        self.record(input.tenant, input.task_id, &step, None)
                            .await?;
                        Err(permanent(format!(
                            "step {} ({}.{}) failed: {e}",
                            input.seq, input.connector, input.action
                        )))
                    }
                }
            }
        }
    }
}
