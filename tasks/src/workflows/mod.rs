//! The durable workflows. Workflow code is deterministic: it decides what happens next from
//! the results of activities (model calls, tool calls, bookkeeping) and from signals (approval
//! decisions); everything that touches the world is an activity.
//!
//! * [`AgentTaskWorkflow`] (`agent.rs`) runs one agent on one input: model step, tool calls
//!   (each admitted by the agents crate's `ToolGate`, parking for approval where the grant
//!   says so), model step, … until the model answers.
//! * [`RuleRunWorkflow`] (`rule.rs`) runs an automation rule's steps in order: connector
//!   actions, agent tasks and crew runs (as child workflows) and approvals, each step's output
//!   available to the next.
//! * [`CrewRunWorkflow`] (`crew.rs`) runs a crew's member turns as child agent tasks.
//!
//! This module holds what they share: activity options, the step ledger, approvals, and how
//! a run ends.

use std::time::Duration;

use brain_agents::providers::Usage;
use serde_json::{Value, json};
use temporalio_common::RetryPolicy;
use temporalio_sdk::{
    ActivityExecutionError, ActivityOptions, ApplicationFailure, ChildWorkflowOptions,
    WorkflowCancellationToken, WorkflowContext, WorkflowResult, WorkflowTermination,
};
use uuid::Uuid;

use super::activities::TaskActivities;
use super::model::{
    AgentTaskInput, ApprovalDecision, CallbackInput, CrewRunInput, RefusedCall, StepNote,
    StepRecord, StepStatus, StepTimeouts, TaskOutcome, TaskStatus,
};

mod agent;
mod crew;
mod rule;

pub use agent::AgentTaskWorkflow;
pub use crew::CrewRunWorkflow;
pub use rule::RuleRunWorkflow;

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

/// Where a run writes its steps: its task row, tenant and pacing.
#[derive(Clone, Copy, Debug)]
struct Ledger {
    task_id: Uuid,
    tenant: Uuid,
    timeouts: StepTimeouts,
}

impl Ledger {
    /// Records a step (and the task's status, if it changes) through the bookkeeping
    /// activity.
    async fn note<W>(
        &self,
        ctx: &mut WorkflowContext<W>,
        step: StepRecord,
        task_status: Option<TaskStatus>,
    ) -> Result<(), Stop> {
        self.write(ctx, step, task_status, None).await
    }

    /// Records the step of a call the run's gate refused, with what its audit needs.
    async fn note_refusal<W>(
        &self,
        ctx: &mut WorkflowContext<W>,
        step: StepRecord,
        refused: RefusedCall,
    ) -> Result<(), Stop> {
        self.write(ctx, step, None, Some(refused)).await
    }

    async fn write<W>(
        &self,
        ctx: &mut WorkflowContext<W>,
        step: StepRecord,
        task_status: Option<TaskStatus>,
        refused: Option<RefusedCall>,
    ) -> Result<(), Stop> {
        ctx.execute_activity(
            TaskActivities::record_step,
            StepNote {
                task_id: self.task_id,
                tenant: self.tenant,
                step,
                task_status,
                refused,
            },
            note_options(&self.timeouts),
        )
        .await
        .map_err(Stop::from)
    }
}

/// What a run reports when it ends, besides its status.
#[derive(Default)]
struct Report {
    /// The run's output; kept when it fails (partial results), dropped when cancelled.
    output: Option<Value>,
    usage: Option<Usage>,
    tool_calls: u64,
    callback_url: Option<String>,
}

/// Ends a run: writes its end to Postgres (even after a cancellation), sends its callback,
/// then ends the workflow the same way in Temporal.
async fn conclude<W, T>(
    ctx: &mut WorkflowContext<W>,
    ledger: &Ledger,
    result: Result<T, Stop>,
    report: Report,
) -> WorkflowResult<T> {
    let (status, output, error) = match &result {
        Ok(_) => (TaskStatus::Succeeded, report.output, None),
        Err(Stop::Cancelled) => (TaskStatus::Cancelled, None, None),
        Err(Stop::Failed(message)) => (TaskStatus::Failed, report.output, Some(message.clone())),
    };
    let outcome = TaskOutcome {
        task_id: ledger.task_id,
        tenant: ledger.tenant,
        status,
        output,
        error,
        usage: report.usage,
        tool_calls: report.tool_calls,
    };
    finish(ctx, &ledger.timeouts, outcome, report.callback_url).await?;
    result.or_else(ending)
}

/// How the workflow itself ends in Temporal, after Postgres says the same.
fn ending<T>(stop: Stop) -> WorkflowResult<T> {
    match stop {
        Stop::Cancelled => Err(WorkflowTermination::cancelled()),
        Stop::Failed(message) => Err(ApplicationFailure::non_retryable(message).into()),
    }
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
    ledger: &Ledger,
    waiting: StepRecord,
) -> Result<ApprovalDecision, Stop> {
    let call_id = waiting.call_id.clone().unwrap_or_default();
    ledger
        .note(ctx, waiting.clone(), Some(TaskStatus::AwaitingApproval))
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
    ledger.note(ctx, decided, Some(TaskStatus::Running)).await?;
    Ok(decision)
}

/// A new id from the workflow's deterministic source.
fn new_id<W>(ctx: &mut WorkflowContext<W>) -> Uuid {
    ctx.uuid4().parse().unwrap_or_else(|_| Uuid::nil())
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
