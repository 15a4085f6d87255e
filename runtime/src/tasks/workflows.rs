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
use brain_agents::tool::{call_label, delegate_target};
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
    AgentTaskInput, ApprovalDecision, CallbackInput, CrewMember, CrewPlan, CrewRunInput,
    LlmStepInput, RuleActionInput, RuleRunInput, StepKind, StepNote, StepRecord, StepStatus,
    StepTimeouts, TaskOutcome, TaskStatus, ToolStepInput,
};
use crate::crews::Process;
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
            ActivityExecutionError::Failed(f) => Stop::Failed(failure_message(f.failure())),
            other => Stop::Failed(other.to_string()),
        }
    }
}

impl Stop {
    fn message(e: ActivityExecutionError) -> String {
        match Stop::from(e) {
            Stop::Cancelled => "cancelled".to_owned(),
            Stop::Failed(m) => m,
        }
    }
}

/// Temporal wraps an activity's own error ("the organisation's daily token budget is
/// exhausted") in an "Activity task failed" envelope; people want the innermost cause.
fn failure_message(
    failure: &temporalio_common::protos::temporal::api::failure::v1::Failure,
) -> String {
    let mut innermost = failure;
    while let Some(cause) = innermost.cause.as_deref() {
        innermost = cause;
    }
    innermost.message.trim().to_owned()
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

/// A delegation runs another agent's turn, which cannot be made idempotent: one attempt.
fn delegation_options(t: &StepTimeouts) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(t.tool_secs))
        .heartbeat_timeout(Duration::from_secs(t.heartbeat_secs))
        .retry_policy(retry(t, 1))
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

/// Workflows that take approval decisions (the `decide` signal).
trait Decisions {
    fn decision(&self, call_id: &str) -> Option<&ApprovalDecision>;
}

/// Parks the task on `waiting` (an approval step) until a person decides, and records the
/// decision; the task runs on either way.
async fn await_decision<W: Decisions + 'static>(
    ctx: &mut WorkflowContext<W>,
    t: &StepTimeouts,
    task_id: Uuid,
    tenant: Uuid,
    waiting: StepRecord,
) -> Result<ApprovalDecision, Stop> {
    let call_id = waiting.call_id.clone().unwrap_or_default();
    note(
        ctx,
        t,
        task_id,
        tenant,
        waiting.clone(),
        Some(TaskStatus::AwaitingApproval),
    )
    .await?;
    let wanted = call_id.clone();
    ctx.wait_condition(move |s: &W| s.decision(&wanted).is_some())
        .await
        .map_err(|_| Stop::Cancelled)?;
    let decision = ctx
        .state(|s| s.decision(&call_id).cloned())
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
    note(ctx, t, task_id, tenant, decided, Some(TaskStatus::Running)).await?;
    Ok(decision)
}

impl Decisions for AgentTaskWorkflow {
    fn decision(&self, call_id: &str) -> Option<&ApprovalDecision> {
        self.decisions.get(call_id)
    }
}

impl Decisions for RuleRunWorkflow {
    fn decision(&self, call_id: &str) -> Option<&ApprovalDecision> {
        self.decisions.get(call_id)
    }
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
                let (connector, action) = call_label(&call.name);
                let (connector, action) = (connector.to_owned(), action.to_owned());
                let delegation = delegate_target(&call.name).is_some();
                // Limits count per connector, and per target for delegations.
                let group = if delegation {
                    call.name.clone()
                } else {
                    connector.clone()
                };
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
                    let used = calls_per_connector.entry(group.clone()).or_insert(0);
                    *used += 1;
                    match plan.call_limits.get(&group) {
                        Some(max) if *used > *max => Some((
                            "tool_call_limit",
                            format!("`{group}` reached its limit of {max} calls per run"),
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
                if plan.approval.contains(&call.name) {
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
                    let decision =
                        await_decision(ctx, &t, input.task_id, input.tenant, waiting).await?;
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

                let prior_calls = calls_per_connector
                    .get(&group)
                    .copied()
                    .unwrap_or(1)
                    .saturating_sub(1);
                let step_input = ToolStepInput {
                    task_id: input.task_id,
                    tenant: input.tenant,
                    agent_id: input.agent_id,
                    seq,
                    call: call.clone(),
                    idempotency_key: format!("{}/{seq}", ctx.workflow_id()),
                    approved_by,
                    prior_calls,
                    run_grant: plan.run_granted.contains(&call.name),
                };
                let fed_back = if delegation {
                    // Another agent's whole turn: run at most once, and if it is interrupted
                    // the agent is told rather than the turn being repeated behind its back.
                    match ctx
                        .execute_activity(
                            TaskActivities::tool_step,
                            step_input,
                            delegation_options(&t),
                        )
                        .await
                    {
                        Ok(result) => result.fed_back,
                        Err(ActivityExecutionError::Cancelled(_)) => return Err(Stop::Cancelled),
                        Err(e) => refusal(
                            "delegation_interrupted",
                            &format!(
                                "the other agent's turn was interrupted ({}); it may have acted in part",
                                Stop::message(e)
                            ),
                        ),
                    }
                } else {
                    ctx.execute_activity(TaskActivities::tool_step, step_input, tool_options(&t))
                        .await?
                        .fed_back
                };
                seq += 1;
                *tool_calls += 1;
                messages.push(ChatMessage::tool_result(call.id.clone(), fed_back));
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
                    let agent = a.agent_id;
                    child_step(
                        ctx,
                        &t,
                        (task_id, input.tenant, seq),
                        (&a.input, context),
                        json!({"agent_id": agent}),
                        |child_task, text| {
                            ChildRun::Agent(AgentTaskInput {
                                task_id: child_task,
                                tenant: input.tenant,
                                agent_id: agent,
                                input: text,
                                callback_url: None,
                                parent_task: Some(task_id),
                                delegates: Vec::new(),
                                timeouts: t,
                            })
                        },
                    )
                    .await?
                }
                Step::CrewRun(c) => {
                    let crew = c.crew_id;
                    child_step(
                        ctx,
                        &t,
                        (task_id, input.tenant, seq),
                        (&c.input, context),
                        json!({"crew_id": crew}),
                        |child_task, text| {
                            ChildRun::Crew(CrewRunInput {
                                task_id: child_task,
                                tenant: input.tenant,
                                crew_id: crew,
                                input: text,
                                parent_task: Some(task_id),
                                timeouts: t,
                            })
                        },
                    )
                    .await?
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
                    let decision = await_decision(ctx, &t, task_id, input.tenant, waiting).await?;
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

/// A child workflow a run waits for: an agent task or a crew run.
enum ChildRun {
    Agent(AgentTaskInput),
    Crew(CrewRunInput),
}

/// Runs a child workflow to its end; its reply, or why it did not give one.
async fn run_child<W>(
    ctx: &mut WorkflowContext<W>,
    child: ChildRun,
    workflow_id: String,
) -> Result<String, String> {
    let options = ChildWorkflowOptions::workflow_id(workflow_id);
    let outcome = match child {
        ChildRun::Agent(input) => {
            let started = ctx
                .start_child_workflow(AgentTaskWorkflow::run, input, options)
                .await
                .map_err(|e| e.to_string())?;
            started.result().await
        }
        ChildRun::Crew(input) => {
            let started = ctx
                .start_child_workflow(CrewRunWorkflow::run, input, options)
                .await
                .map_err(|e| e.to_string())?;
            started.result().await
        }
    };
    outcome.map_err(|e| {
        e.failure()
            .map(|f| f.message.clone())
            .unwrap_or_else(|| e.to_string())
    })
}

/// A rule step that runs a child task (an agent task or a crew run) on its rendered input,
/// recording it as one step of the rule run; the child's reply is the step's output.
async fn child_step<W>(
    ctx: &mut WorkflowContext<W>,
    t: &StepTimeouts,
    (task_id, tenant, seq): (Uuid, Uuid, u32),
    (template, context): (&str, &Value),
    mut detail: Value,
    child: impl FnOnce(Uuid, String) -> ChildRun,
) -> Result<Value, Stop> {
    let mut step = StepRecord {
        seq,
        kind: StepKind::AgentTask,
        status: StepStatus::Running,
        call_id: None,
        connector: None,
        action: None,
        detail: detail.clone(),
        error: None,
    };
    let text = match render_text(template, context) {
        Ok(text) => text,
        Err(e) => {
            step.status = StepStatus::Failed;
            step.error = Some(e.to_string());
            note(ctx, t, task_id, tenant, step, None).await?;
            return Err(Stop::Failed(e.to_string()));
        }
    };
    let child_task: Uuid = ctx.uuid4().parse().unwrap_or_else(|_| Uuid::nil());
    detail["task_id"] = json!(child_task);
    detail["input"] = json!(text);
    step.detail = detail;
    note(ctx, t, task_id, tenant, step.clone(), None).await?;
    let workflow_id = format!("{}/step-{seq}", ctx.workflow_id());
    let reply = run_child(ctx, child(child_task, text), workflow_id).await;
    step.status = if reply.is_ok() {
        StepStatus::Succeeded
    } else {
        StepStatus::Failed
    };
    step.error = reply.as_ref().err().cloned();
    step.detail = json!({"output": reply.as_ref().ok()});
    note(ctx, t, task_id, tenant, step, None).await?;
    match reply {
        Ok(reply) => Ok(Value::String(reply)),
        Err(_) if ctx.cancellation_token().is_cancelled() => Err(Stop::Cancelled),
        Err(e) => Err(Stop::Failed(format!("step {seq} failed: {e}"))),
    }
}

/// What a member of a sequential crew is asked to do.
fn member_prompt(
    crew_input: &str,
    task: &super::model::CrewPlanTask,
    earlier: &[(String, String)],
) -> String {
    let mut prompt = format!(
        "{crew_input}\n\nYour task: {}\nExpected output: {}\n",
        task.description, task.expected_output
    );
    if !earlier.is_empty() {
        prompt.push_str("\nResults of the earlier tasks of this crew, in order:\n");
        for (i, (who, output)) in earlier.iter().enumerate() {
            prompt.push_str(&format!("{}. {who}: {output}\n", i + 1));
        }
    }
    prompt
}

/// What a hierarchical crew's manager is asked to do.
fn manager_prompt(crew_input: &str, plan: &CrewPlan) -> String {
    let mut prompt = format!(
        "{crew_input}\n\nYou manage the crew \"{}\". Hand each task to the member best suited \
         for it with the ask_<member> tools, then assemble the members' results into the final \
         answer.\n\nMembers:\n",
        plan.name
    );
    for m in &plan.members {
        prompt.push_str(&format!("- {} (ask_{}): {}\n", m.name, m.slug, m.role));
    }
    prompt.push_str("\nTasks:\n");
    for (i, t) in plan.tasks.iter().enumerate() {
        prompt.push_str(&format!(
            "{}. {} (expected output: {})\n",
            i + 1,
            t.description,
            t.expected_output
        ));
    }
    prompt
}

fn member_name(plan: &CrewPlan, agent: Uuid) -> String {
    plan.members
        .iter()
        .chain(plan.manager.iter())
        .find(|m| m.agent_id == agent)
        .map_or_else(|| agent.to_string(), |m: &CrewMember| m.name.clone())
}

/// One run of a crew: its tasks in order (sequential) or its manager delegating them
/// (hierarchical); every member turn is a child agent task with its own steps.
#[workflow]
#[derive(Default)]
pub struct CrewRunWorkflow;

#[workflow_methods]
impl CrewRunWorkflow {
    #[run(name = "CrewRun")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: CrewRunInput,
    ) -> WorkflowResult<String> {
        let t = input.timeouts;
        let plan = match ctx
            .execute_activity(
                TaskActivities::begin_crew_run,
                input.clone(),
                note_options(&t),
            )
            .await
        {
            Ok(plan) => plan,
            Err(e) => {
                let stop = Stop::from(e);
                if let Stop::Failed(message) = &stop {
                    let outcome = TaskOutcome {
                        task_id: input.task_id,
                        tenant: input.tenant,
                        status: TaskStatus::Failed,
                        output: None,
                        error: Some(message.clone()),
                        usage: None,
                        tool_calls: 0,
                    };
                    finish(ctx, &t, outcome, None).await?;
                }
                return ending(stop);
            }
        };
        let mut results: Vec<Value> = Vec::new();
        let result = Self::steps(ctx, &input, &plan, &mut results).await;
        let (status, output, error) = match &result {
            Ok(answer) => (
                TaskStatus::Succeeded,
                Some(json!({"reply": answer, "tasks": results})),
                None,
            ),
            Err(Stop::Cancelled) => (TaskStatus::Cancelled, None, None),
            Err(Stop::Failed(m)) => (
                TaskStatus::Failed,
                Some(json!({"tasks": results})),
                Some(m.clone()),
            ),
        };
        let outcome = TaskOutcome {
            task_id: plan.task_id,
            tenant: input.tenant,
            status,
            output,
            error,
            usage: None,
            tool_calls: 0,
        };
        finish(ctx, &t, outcome, None).await?;
        match result {
            Ok(answer) => Ok(answer),
            Err(stop) => ending(stop),
        }
    }

    async fn steps(
        ctx: &mut WorkflowContext<Self>,
        input: &CrewRunInput,
        plan: &CrewPlan,
        results: &mut Vec<Value>,
    ) -> Result<String, Stop> {
        let t = input.timeouts;
        // (agent, task text) per member turn, in order.
        let turns: Vec<(Uuid, String, Vec<Uuid>)> = match plan.process {
            Process::Sequential => plan
                .tasks
                .iter()
                .map(|task| (task.agent_id, String::new(), Vec::new()))
                .collect(),
            Process::Hierarchical => {
                let manager = plan
                    .manager
                    .as_ref()
                    .ok_or_else(|| Stop::Failed("the crew has no manager".into()))?;
                vec![(
                    manager.agent_id,
                    manager_prompt(&input.input, plan),
                    plan.members.iter().map(|m| m.agent_id).collect(),
                )]
            }
        };
        let mut earlier: Vec<(String, String)> = Vec::new();
        let mut answer = String::new();
        for (index, (agent, text, delegates)) in turns.into_iter().enumerate() {
            let seq = u32::try_from(index).unwrap_or(u32::MAX);
            let text = match plan.process {
                Process::Sequential => member_prompt(&input.input, &plan.tasks[index], &earlier),
                Process::Hierarchical => text,
            };
            let child_task: Uuid = ctx.uuid4().parse().unwrap_or_else(|_| Uuid::nil());
            let who = member_name(plan, agent);
            let running = StepRecord {
                seq,
                kind: StepKind::AgentTask,
                status: StepStatus::Running,
                call_id: None,
                connector: None,
                action: None,
                detail: json!({"agent_id": agent, "agent": who, "task_id": child_task,
                               "crew_task": plan.tasks.get(index).map(|t| &t.description)}),
                error: None,
            };
            note(ctx, &t, plan.task_id, input.tenant, running.clone(), None).await?;
            let reply = run_child(
                ctx,
                ChildRun::Agent(AgentTaskInput {
                    task_id: child_task,
                    tenant: input.tenant,
                    agent_id: agent,
                    input: text,
                    callback_url: None,
                    parent_task: Some(plan.task_id),
                    delegates,
                    timeouts: t,
                }),
                format!("{}/turn-{seq}", ctx.workflow_id()),
            )
            .await;
            let done = StepRecord {
                status: if reply.is_ok() {
                    StepStatus::Succeeded
                } else {
                    StepStatus::Failed
                },
                error: reply.as_ref().err().cloned(),
                detail: json!({"output": reply.as_ref().ok()}),
                ..running
            };
            note(ctx, &t, plan.task_id, input.tenant, done, None).await?;
            match reply {
                Ok(reply) => {
                    results.push(json!({"agent_id": agent, "agent": who, "output": reply}));
                    earlier.push((who, reply.clone()));
                    answer = reply;
                }
                Err(_) if ctx.cancellation_token().is_cancelled() => return Err(Stop::Cancelled),
                Err(e) => return Err(Stop::Failed(format!("{who}'s turn failed: {e}"))),
            }
        }
        Ok(answer)
    }
}
