//! The durable workflows. Workflow code is deterministic: it decides what happens next from
//! the results of activities (model calls, tool calls, bookkeeping) and from signals (approval
//! decisions); everything that touches the world is an activity.
//!
//! * [`AgentTaskWorkflow`] runs one agent on one input: model step, tool calls (parking for
//!   approval where the grant says so), model step, … until the model answers.
//! * [`RuleRunWorkflow`] runs an automation rule's steps in order: connector actions, agent
//!   tasks (as child workflows) and approvals, each step's output available to the next.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use brain_agents::providers::{ChatMessage, ChatRole, Usage};
use brain_agents::tool::split_tool_name;
use serde_json::{Value, json};
use temporalio_common::RetryPolicy;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityExecutionError, ActivityOptions, ApplicationFailure, ChildWorkflowOptions,
    SyncWorkflowContext, WorkflowCancellationToken, WorkflowContext, WorkflowContextView,
    WorkflowResult, WorkflowTermination,
};
use uuid::Uuid;

use super::activities::TaskActivities;
use super::model::{
    AgentTaskInput, ApprovalDecision, CallbackInput, LlmStepInput, RuleActionInput, RuleRunInput,
    StepKind, StepNote, StepRecord, StepStatus, StepTimeouts, TaskOutcome, TaskStatus,
    ToolStepInput,
};
use crate::rules::{Step, render_text};

/// Why a workflow stops before its end.
enum Stop {
    Cancelled,
    Failed(String),
}

impl From<ActivityExecutionError> for Stop {
    fn from(e: ActivityExecutionError) -> Self {
        match e {
            ActivityExecutionError::Cancelled(_) => Stop::Cancelled,
            ActivityExecutionError::Failed(f) => {
                Stop::Failed(failure_message(&f.failure().message))
            }
            other => Stop::Failed(other.to_string()),
        }
    }
}

/// Temporal prefixes retried failures with their attempt count; people want the cause.
fn failure_message(message: &str) -> String {
    message.trim().to_owned()
}

fn retry(t: &StepTimeouts, attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(Duration::from_millis(t.retry_initial_ms))
        .maximum_interval(Duration::from_secs(60))
        .maximum_attempts(attempts)
        .build()
}

/// Model calls: bounded by the provider's own timeouts, retried a few times.
fn llm_options(t: &StepTimeouts) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(t.llm_secs))
        .retry_policy(retry(t, 3))
        .build()
}

/// Tool calls heartbeat, so a dead worker is noticed within `heartbeat_secs`; a retry carries
/// the same idempotency key.
fn tool_options(t: &StepTimeouts) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(t.tool_secs))
        .heartbeat_timeout(Duration::from_secs(t.heartbeat_secs))
        .retry_policy(retry(t, 10))
        .build()
}

/// Bookkeeping (Postgres writes): quick, retried until the database is back.
fn note_options(t: &StepTimeouts) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(retry(t, 0))
        .build()
}

/// Bookkeeping that must run even though the workflow was cancelled.
fn detached(mut options: ActivityOptions) -> ActivityOptions {
    options.cancellation_token = Some(WorkflowCancellationToken::new());
    options
}

/// The signed completion callback: retried with back-off for about a day.
fn callback_options(t: &StepTimeouts) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(Duration::from_millis(t.retry_initial_ms))
                .maximum_interval(Duration::from_secs(3600))
                .maximum_attempts(12)
                .build(),
        )
        .cancellation_token(WorkflowCancellationToken::new())
        .build()
}

/// A tool's result as the model sees it when the call did not happen.
fn refusal(code: &str, message: &str) -> String {
    json!({"error": code, "message": message}).to_string()
}

/// Records a step through the bookkeeping activity.
async fn note<W>(
    ctx: &mut WorkflowContext<W>,
    timeouts: &StepTimeouts,
    task_id: Uuid,
    tenant: Uuid,
    step: StepRecord,
    task_status: Option<TaskStatus>,
) -> Result<(), Stop> {
    ctx.execute_activity(
        TaskActivities::record_step,
        StepNote {
            task_id,
            tenant,
            step,
            task_status,
        },
        note_options(timeouts),
    )
    .await
    .map_err(Stop::from)
}

/// Writes the task's end (even after a cancellation) and sends its callback.
async fn finish<W>(
    ctx: &mut WorkflowContext<W>,
    timeouts: &StepTimeouts,
    outcome: TaskOutcome,
    callback_url: Option<String>,
) -> WorkflowResult<()> {
    let (task_id, tenant) = (outcome.task_id, outcome.tenant);
    ctx.execute_activity(
        TaskActivities::finish_task,
        outcome,
        detached(note_options(timeouts)),
    )
    .await?;
    if let Some(url) = callback_url {
        // A callback that never gets through does not change how the task ended.
        let _ = ctx
            .execute_activity(
                TaskActivities::deliver_callback,
                CallbackInput {
                    task_id,
                    tenant,
                    url,
                },
                callback_options(timeouts),
            )
            .await;
    }
    Ok(())
}

/// How the workflow itself ends in Temporal, after Postgres says the same.
fn ending<T>(stop: Stop) -> WorkflowResult<T> {
    match stop {
        Stop::Cancelled => Err(WorkflowTermination::cancelled()),
        Stop::Failed(message) => Err(ApplicationFailure::non_retryable(message).into()),
    }
}

/// One agent, one input, until it answers.
#[workflow]
#[derive(Default)]
pub struct AgentTaskWorkflow {
    decisions: HashMap<String, ApprovalDecision>,
}

struct AgentRun {
    reply: String,
}

#[workflow_methods]
impl AgentTaskWorkflow {
    #[run(name = "AgentTask")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: AgentTaskInput,
    ) -> WorkflowResult<String> {
        let mut usage = Usage::default();
        let mut tool_calls = 0;
        let result = Self::steps(ctx, &input, &mut usage, &mut tool_calls).await;
        let (status, output, error) = match &result {
            Ok(run) => (
                TaskStatus::Succeeded,
                Some(json!({"reply": run.reply})),
                None,
            ),
            Err(Stop::Cancelled) => (TaskStatus::Cancelled, None, None),
            Err(Stop::Failed(message)) => (TaskStatus::Failed, None, Some(message.clone())),
        };
        let outcome = TaskOutcome {
            task_id: input.task_id,
            tenant: input.tenant,
            status,
            output,
            error,
            usage: Some(usage),
            tool_calls,
        };
        finish(ctx, &input.timeouts, outcome, input.callback_url.clone()).await?;
        match result {
            Ok(run) => Ok(run.reply),
            Err(stop) => ending(stop),
        }
    }

    /// A person's answer to a parked tool call. The first answer counts.
    #[signal(name = "decide")]
    pub fn decide(&mut self, _ctx: &mut SyncWorkflowContext<Self>, decision: ApprovalDecision) {
        self.decisions
            .entry(decision.call_id.clone())
            .or_insert(decision);
    }

    /// Calls waiting for a decision.
    #[query(name = "decided")]
    pub fn decided(&self, _ctx: &WorkflowContextView) -> Vec<String> {
        self.decisions.keys().cloned().collect()
    }

    async fn steps(
        ctx: &mut WorkflowContext<Self>,
        input: &AgentTaskInput,
        usage: &mut Usage,
        tool_calls: &mut u64,
    ) -> Result<AgentRun, Stop> {
        let t = input.timeouts;
        let plan = ctx
            .execute_activity(
                TaskActivities::begin_agent_task,
                input.clone(),
                note_options(&t),
            )
            .await?;
        let offered: HashSet<String> = plan.tools.iter().map(|d| d.name.clone()).collect();
        let mut messages = plan.messages.clone();
        let mut calls_per_connector: BTreeMap<String, u32> = BTreeMap::new();
        let mut approval_ids: HashSet<String> = HashSet::new();
        let mut seq: u32 = 0;
        let max_steps = plan.max_steps.max(1);
        for step in 0..max_steps {
            let last = step + 1 >= max_steps;
            let reply = ctx
                .execute_activity(
                    TaskActivities::llm_step,
                    LlmStepInput {
                        task_id: input.task_id,
                        tenant: input.tenant,
                        agent_id: input.agent_id,
                        seq,
                        model: plan.model.clone(),
                        temperature: plan.temperature,
                        max_tokens: plan.max_tokens,
                        messages: messages.clone(),
                        tools: if last { Vec::new() } else { plan.tools.clone() },
                    },
                    llm_options(&t),
                )
                .await?;
            seq += 1;
            *usage += reply.usage;
            if reply.tool_calls.is_empty() {
                return Ok(AgentRun {
                    reply: reply.content,
                });
            }
            messages.push(ChatMessage {
                role: ChatRole::Assistant,
                content: reply.content.clone(),
                tool_calls: reply.tool_calls.clone(),
                tool_call_id: None,
            });
            for call in &reply.tool_calls {
                let (connector, action) = split_tool_name(&call.name);
                let (connector, action) = (connector.to_owned(), action.to_owned());
                let tool_step = |status, error: Option<String>, detail: Value| StepRecord {
                    seq: 0,
                    kind: StepKind::Tool,
                    status,
                    call_id: Some(call.id.clone()),
                    connector: Some(connector.clone()),
                    action: Some(action.clone()),
                    detail,
                    error,
                };
                // Enforcement happens here and in the activity, never in the prompt: a tool
                // the agent holds no handle for is not executed.
                let refused = if !offered.contains(&call.name) {
                    Some((
                        "tool_not_granted",
                        format!("the agent holds no grant for tool `{}`", call.name),
                    ))
                } else if !call.arguments.is_object() {
                    Some((
                        "invalid_arguments",
                        "arguments must be a JSON object".to_owned(),
                    ))
                } else {
                    let used = calls_per_connector.entry(connector.clone()).or_insert(0);
                    *used += 1;
                    match plan.call_limits.get(&connector) {
                        Some(max) if *used > *max => Some((
                            "tool_call_limit",
                            format!("`{connector}` reached its limit of {max} calls per run"),
                        )),
                        _ => None,
                    }
                };
                if let Some((code, message)) = refused {
                    let mut step = tool_step(
                        StepStatus::Failed,
                        Some(message.clone()),
                        json!({"args": call.arguments, "refused": code}),
                    );
                    step.seq = seq;
                    note(ctx, &t, input.task_id, input.tenant, step, None).await?;
                    seq += 1;
                    messages.push(ChatMessage::tool_result(
                        call.id.clone(),
                        refusal(code, &message),
                    ));
                    continue;
                }

                let mut approved_by = None;
                if plan.approval.contains(&connector) {
                    // Model call ids may repeat across steps; approvals need one per call.
                    let mut approval_id = call.id.clone();
                    if !approval_ids.insert(approval_id.clone()) {
                        approval_id = format!("{}-{seq}", call.id);
                        approval_ids.insert(approval_id.clone());
                    }
                    let waiting = StepRecord {
                        seq,
                        kind: StepKind::Approval,
                        status: StepStatus::AwaitingApproval,
                        call_id: Some(approval_id.clone()),
                        connector: Some(connector.clone()),
                        action: Some(action.clone()),
                        detail: json!({"args": call.arguments, "tool_call_id": call.id}),
                        error: None,
                    };
                    note(
                        ctx,
                        &t,
                        input.task_id,
                        input.tenant,
                        waiting.clone(),
                        Some(TaskStatus::AwaitingApproval),
                    )
                    .await?;
                    let wanted = approval_id.clone();
                    ctx.wait_condition(move |s: &Self| s.decisions.contains_key(&wanted))
                        .await
                        .map_err(|_| Stop::Cancelled)?;
                    let decision = ctx
                        .state(|s| s.decisions.get(&approval_id).cloned())
                        .ok_or_else(|| Stop::Failed("approval decision vanished".into()))?;
                    let decided = StepRecord {
                        status: if decision.approve {
                            StepStatus::Approved
                        } else {
                            StepStatus::Rejected
                        },
                        detail: json!({"decided_by": decision.actor, "note": decision.note}),
                        error: (!decision.approve).then(|| "rejected by a person".to_owned()),
                        ..waiting
                    };
                    note(
                        ctx,
                        &t,
                        input.task_id,
                        input.tenant,
                        decided,
                        Some(TaskStatus::Running),
                    )
                    .await?;
                    seq += 1;
                    if !decision.approve {
                        let mut message = "a person rejected this call; do not retry it".to_owned();
                        if let Some(note) =
                            decision.note.as_deref().filter(|n| !n.trim().is_empty())
                        {
                            message.push_str(&format!(" (their note: {note})"));
                        }
                        messages.push(ChatMessage::tool_result(
                            call.id.clone(),
                            refusal("rejected", &message),
                        ));
                        continue;
                    }
                    approved_by = Some(decision.actor);
                }

                let result = ctx
                    .execute_activity(
                        TaskActivities::tool_step,
                        ToolStepInput {
                            task_id: input.task_id,
                            tenant: input.tenant,
                            agent_id: input.agent_id,
                            seq,
                            call: call.clone(),
                            idempotency_key: format!("{}/{seq}", ctx.workflow_id()),
                            approved_by,
                        },
                        tool_options(&t),
                    )
                    .await?;
                seq += 1;
                *tool_calls += 1;
                messages.push(ChatMessage::tool_result(call.id.clone(), result.fed_back));
            }
        }
        // The last step offers no tools, so the loop only ends here without an answer if the
        // model insisted on calling one anyway.
        Err(Stop::Failed(
            "the agent did not answer within its step limit".into(),
        ))
    }
}

/// One run of an automation rule.
#[workflow]
#[derive(Default)]
pub struct RuleRunWorkflow {
    decisions: HashMap<String, ApprovalDecision>,
}

#[workflow_methods]
impl RuleRunWorkflow {
    #[run(name = "RuleRun")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: RuleRunInput,
    ) -> WorkflowResult<Value> {
        let t = input.timeouts;
        let plan = ctx
            .execute_activity(
                TaskActivities::begin_rule_run,
                input.clone(),
                note_options(&t),
            )
            .await?;
        let task_id = plan.task_id;
        let Some(steps) = plan.steps else {
            let outcome = TaskOutcome {
                task_id,
                tenant: input.tenant,
                status: TaskStatus::Cancelled,
                output: None,
                error: Some("the rule was disabled or deleted before this run began".into()),
                usage: None,
                tool_calls: 0,
            };
            finish(ctx, &t, outcome, None).await?;
            return Ok(Value::Null);
        };
        let mut context = json!({
            "event": input.event,
            "steps": [],
            "rule": {"id": input.rule_id, "name": plan.rule_name},
        });
        let result = Self::steps(ctx, &input, task_id, &steps, &mut context).await;
        let outputs = context["steps"].clone();
        let (status, output, error) = match &result {
            Ok(()) => (TaskStatus::Succeeded, Some(json!({"steps": outputs})), None),
            Err(Stop::Cancelled) => (TaskStatus::Cancelled, None, None),
            Err(Stop::Failed(m)) => (
                TaskStatus::Failed,
                Some(json!({"steps": outputs})),
                Some(m.clone()),
            ),
        };
        let outcome = TaskOutcome {
            task_id,
            tenant: input.tenant,
            status,
            output,
            error,
            usage: None,
            tool_calls: 0,
        };
        finish(ctx, &t, outcome, None).await?;
        match result {
            Ok(()) => Ok(json!({"task_id": task_id, "steps": outputs})),
            Err(stop) => ending(stop),
        }
    }

    #[signal(name = "decide")]
    pub fn decide(&mut self, _ctx: &mut SyncWorkflowContext<Self>, decision: ApprovalDecision) {
        self.decisions
            .entry(decision.call_id.clone())
            .or_insert(decision);
    }

    async fn steps(
        ctx: &mut WorkflowContext<Self>,
        input: &RuleRunInput,
        task_id: Uuid,
        steps: &[Step],
        context: &mut Value,
    ) -> Result<(), Stop> {
        let t = input.timeouts;
        for (index, step) in steps.iter().enumerate() {
            let seq = u32::try_from(index).unwrap_or(u32::MAX);
            let output = match step {
                Step::ConnectorAction(a) => {
                    ctx.execute_activity(
                        TaskActivities::rule_action,
                        RuleActionInput {
                            task_id,
                            tenant: input.tenant,
                            rule_id: input.rule_id,
                            seq,
                            connector: a.connector.clone(),
                            action: a.action.clone(),
                            args: a.args.clone(),
                            context: context.clone(),
                            idempotency_key: format!("{}/{seq}", ctx.workflow_id()),
                        },
                        tool_options(&t),
                    )
                    .await?
                }
                Step::AgentTask(a) => {
                    let child_input = match render_text(&a.input, context) {
                        Ok(text) => text,
                        Err(e) => {
                            let failed = StepRecord {
                                seq,
                                kind: StepKind::AgentTask,
                                status: StepStatus::Failed,
                                call_id: None,
                                connector: None,
                                action: None,
                                detail: json!({"agent_id": a.agent_id}),
                                error: Some(e.to_string()),
                            };
                            note(ctx, &t, task_id, input.tenant, failed, None).await?;
                            return Err(Stop::Failed(e.to_string()));
                        }
                    };
                    let child_task: Uuid = ctx.uuid4().parse().unwrap_or_else(|_| Uuid::nil());
                    let running = StepRecord {
                        seq,
                        kind: StepKind::AgentTask,
                        status: StepStatus::Running,
                        call_id: None,
                        connector: None,
                        action: None,
                        detail: json!({"agent_id": a.agent_id, "task_id": child_task, "input": child_input}),
                        error: None,
                    };
                    note(ctx, &t, task_id, input.tenant, running.clone(), None).await?;
                    let started = ctx
                        .start_child_workflow(
                            AgentTaskWorkflow::run,
                            AgentTaskInput {
                                task_id: child_task,
                                tenant: input.tenant,
                                agent_id: a.agent_id,
                                input: child_input,
                                callback_url: None,
                                parent_task: Some(task_id),
                                timeouts: t,
                            },
                            ChildWorkflowOptions::workflow_id(format!(
                                "{}/step-{seq}",
                                ctx.workflow_id()
                            )),
                        )
                        .await
                        .map_err(|e| Stop::Failed(e.to_string()))?;
                    let outcome = started.result().await;
                    let (status, error, reply) = match outcome {
                        Ok(reply) => (StepStatus::Succeeded, None, Some(reply)),
                        Err(e) => {
                            let message = e
                                .failure()
                                .map(|f| f.message.clone())
                                .unwrap_or_else(|| e.to_string());
                            (StepStatus::Failed, Some(message), None)
                        }
                    };
                    let done = StepRecord {
                        status,
                        error: error.clone(),
                        detail: json!({"output": reply}),
                        ..running
                    };
                    note(ctx, &t, task_id, input.tenant, done, None).await?;
                    match reply {
                        Some(reply) => Value::String(reply),
                        None => {
                            if ctx.cancellation_token().is_cancelled() {
                                return Err(Stop::Cancelled);
                            }
                            return Err(Stop::Failed(format!(
                                "step {seq} (agent task) failed: {}",
                                error.unwrap_or_default()
                            )));
                        }
                    }
                }
                Step::Approval(a) => {
                    let approval_id = format!("step-{seq}");
                    let waiting = StepRecord {
                        seq,
                        kind: StepKind::Approval,
                        status: StepStatus::AwaitingApproval,
                        call_id: Some(approval_id.clone()),
                        connector: None,
                        action: None,
                        detail: json!({"role": a.role}),
                        error: None,
                    };
                    note(
                        ctx,
                        &t,
                        task_id,
                        input.tenant,
                        waiting.clone(),
                        Some(TaskStatus::AwaitingApproval),
                    )
                    .await?;
                    let wanted = approval_id.clone();
                    ctx.wait_condition(move |s: &Self| s.decisions.contains_key(&wanted))
                        .await
                        .map_err(|_| Stop::Cancelled)?;
                    let decision = ctx
                        .state(|s| s.decisions.get(&approval_id).cloned())
                        .ok_or_else(|| Stop::Failed("approval decision vanished".into()))?;
                    let decided = StepRecord {
                        status: if decision.approve {
                            StepStatus::Approved
                        } else {
                            StepStatus::Rejected
                        },
                        detail: json!({"decided_by": decision.actor, "note": decision.note}),
                        error: (!decision.approve).then(|| "rejected by a person".to_owned()),
                        ..waiting
                    };
                    note(
                        ctx,
                        &t,
                        task_id,
                        input.tenant,
                        decided,
                        Some(TaskStatus::Running),
                    )
                    .await?;
                    if !decision.approve {
                        return Err(Stop::Failed(format!(
                            "step {seq} was rejected by {}",
                            decision.actor
                        )));
                    }
                    json!({"approved_by": decision.actor, "note": decision.note})
                }
            };
            if let Some(list) = context["steps"].as_array_mut() {
                list.push(json!({"output": output}));
            }
        }
        Ok(())
    }
}
