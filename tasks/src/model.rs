//! What tasks are made of: statuses, steps, and the values that travel between the API, the
//! workflows and the activities (all serialisable, since Temporal stores them in history).

use std::collections::BTreeMap;

use brain_agents::providers::{ChatMessage, ToolCall, ToolDefinition, Usage};
use brain_agents::tool::ToolError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use uuid::Uuid;

pub use brain_types::status::{CallbackStatus, StepKind, StepStatus, TaskKind, TaskStatus};

/// The OpenAPI schema of a `brain_types` status or kind (that crate stays serde-only): a
/// string, one of `names`.
fn names(names: impl Iterator<Item = &'static str>) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(names))
        .build()
}

fn task_status_schema() -> Object {
    names(TaskStatus::ALL.iter().map(|s| s.as_str()))
}

fn task_kind_schema() -> Object {
    names(TaskKind::ALL.iter().map(|k| k.as_str()))
}

fn step_status_schema() -> Object {
    names(StepStatus::ALL.iter().map(|s| s.as_str()))
}

fn step_kind_schema() -> Object {
    names(StepKind::ALL.iter().map(|k| k.as_str()))
}

fn callback_status_schema() -> Object {
    names(CallbackStatus::ALL.iter().map(|s| s.as_str()))
}

impl StepRecord {
    /// A step with no call, connector or action (set those with struct update syntax).
    pub fn new(seq: u32, kind: StepKind, status: StepStatus, detail: Value) -> Self {
        Self {
            seq,
            kind,
            status,
            call_id: None,
            connector: None,
            action: None,
            detail,
            error: None,
        }
    }
}

/// A step as written by an activity: its position, what it is, and how it went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub seq: u32,
    pub kind: StepKind,
    pub status: StepStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Arguments, outputs, usage, approver: never secrets.
    #[serde(default)]
    pub detail: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A step as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StepView {
    /// Position in the task, from 0.
    pub seq: i32,
    #[schema(schema_with = step_kind_schema)]
    pub kind: StepKind,
    #[schema(schema_with = step_status_schema)]
    pub status: StepStatus,
    /// The model's id of the tool call (tool and approval steps); approvals name it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Arguments, outputs, usage, approver: never secrets.
    pub detail: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A task as the API shows it: `GET /v1/tasks/{id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskView {
    pub task_id: Uuid,
    #[schema(schema_with = task_kind_schema)]
    pub kind: TaskKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crew_id: Option<Uuid>,
    /// The crew run or rule run this task is a step of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_task_id: Option<Uuid>,
    #[schema(schema_with = task_status_schema)]
    pub status: TaskStatus,
    /// What the task was given: `{"input": …}` for agent tasks and crew runs, `{"trigger",
    /// "event"}` for rule runs.
    pub input: Value,
    /// The result, once succeeded.
    pub output: Option<Value>,
    pub error: Option<String>,
    /// Tokens spent (`prompt_tokens`, `completion_tokens`), once finished.
    pub usage: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// Delivery of the signed completion callback, when the task has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = callback_status_schema)]
    pub callback_status: Option<CallbackStatus>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Empty in listings; every step, in order, for one task.
    pub steps: Vec<StepView>,
}

/// Activity timeouts and retry pacing, fixed when a workflow starts (so replays agree).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepTimeouts {
    /// Longest a model call may take.
    pub llm_secs: u64,
    /// Longest a tool call may take.
    pub tool_secs: u64,
    /// A running tool call heartbeats; this long without one and Temporal retries it
    /// elsewhere (a dead worker is noticed this fast).
    pub heartbeat_secs: u64,
    /// First retry delay of a failed activity (doubles per attempt).
    pub retry_initial_ms: u64,
}

impl Default for StepTimeouts {
    fn default() -> Self {
        Self {
            llm_secs: 300,
            tool_secs: 300,
            heartbeat_secs: 20,
            retry_initial_ms: 1000,
        }
    }
}

/// Input of the agent-task workflow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentTaskInput {
    pub task_id: Uuid,
    pub tenant: Uuid,
    pub agent_id: Uuid,
    pub input: String,
    #[serde(default)]
    pub callback_url: Option<String>,
    /// The task that started this one (a rule run's agent step, a crew run), if any.
    #[serde(default)]
    pub parent_task: Option<Uuid>,
    /// Agents this task may ask for help on top of the agent's own delegate grants: a
    /// hierarchical crew's members, for its manager.
    #[serde(default)]
    pub delegates: Vec<Uuid>,
    pub timeouts: StepTimeouts,
    /// The JSON Schema the answer must match (`NewTask::output_schema`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
}

/// What an agent task runs with, fixed at its start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskPlan {
    /// `provider:model`.
    pub model: String,
    pub temperature: f32,
    pub max_tokens: u32,
    pub messages: Vec<ChatMessage>,
    pub tools: Vec<ToolDefinition>,
    /// Tools whose grant says `approval: always` (function names).
    pub approval: Vec<String>,
    /// Calls allowed per connector, and per delegation tool, in this task
    /// (`max_calls_per_run`).
    pub call_limits: BTreeMap<String, u32>,
    /// Delegation tools the run itself grants (a crew manager's members).
    #[serde(default)]
    pub run_granted: Vec<String>,
    pub max_steps: u32,
    pub citations: Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LlmStepInput {
    pub task_id: Uuid,
    pub tenant: Uuid,
    pub agent_id: Uuid,
    pub seq: u32,
    pub model: String,
    pub temperature: f32,
    pub max_tokens: u32,
    pub messages: Vec<ChatMessage>,
    pub tools: Vec<ToolDefinition>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LlmStepOutput {
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolStepInput {
    pub task_id: Uuid,
    pub tenant: Uuid,
    pub agent_id: Uuid,
    pub seq: u32,
    pub call: ToolCall,
    /// Stable across retries: the workflow id and the step's position.
    pub idempotency_key: String,
    /// Set when a person approved the call (required for `approval: always` grants).
    #[serde(default)]
    pub approved_by: Option<String>,
    /// Earlier calls of this task to the same delegation target.
    #[serde(default)]
    pub prior_calls: u32,
    /// The run grants this delegation (a crew manager asking a member).
    #[serde(default)]
    pub run_grant: bool,
}

/// How a tool call ended; an error is a result the model is told about, not a crash.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolStepOutput {
    pub ok: bool,
    /// What the model gets back.
    pub fed_back: String,
}

/// A person's answer to an approval, sent to the workflow as a signal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApprovalDecision {
    pub call_id: String,
    pub approve: bool,
    #[serde(default)]
    pub note: Option<String>,
    /// `user:<id>` or `api_key:<id>`.
    pub actor: String,
}

/// How a task ended, written by the last activity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskOutcome {
    pub task_id: Uuid,
    pub tenant: Uuid,
    pub status: TaskStatus,
    #[serde(default)]
    pub output: Option<Value>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub usage: Option<Usage>,
    #[serde(default)]
    pub tool_calls: u64,
}

/// The signed completion callback of a task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallbackInput {
    pub task_id: Uuid,
    pub tenant: Uuid,
    pub url: String,
}

/// Input of the rule-run workflow: a rule fired by an event, a schedule or a person.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleRunInput {
    pub tenant: Uuid,
    pub rule_id: Uuid,
    /// Set when the run was started through the API (events, manual runs); a schedule's runs
    /// get their task row from the workflow id instead.
    #[serde(default)]
    pub task_id: Option<Uuid>,
    #[serde(default)]
    pub event: Value,
    /// `event`, `schedule` or `manual`.
    pub trigger: String,
    pub timeouts: StepTimeouts,
}

/// What a rule run executes, loaded when it starts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RulePlan {
    pub task_id: Uuid,
    pub rule_name: String,
    /// `None` when the rule was deleted or disabled before the run began.
    pub steps: Option<Vec<PlannedStep>>,
}

/// A rule step as workflow history carries it. Its own type, not the API's
/// [`brain_automation::rules::Step`]: a change to what the API accepts must not break the replay of runs
/// already in flight. Same JSON as the API type had when history began to carry steps
/// (externally tagged, snake_case), and lenient about fields it does not know.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlannedStep {
    ConnectorAction {
        connector: String,
        action: String,
        #[serde(default)]
        args: Value,
    },
    AgentTask {
        agent_id: Uuid,
        input: String,
    },
    Approval {
        role: brain_auth::Role,
    },
    CrewRun {
        crew_id: Uuid,
        input: String,
    },
}

impl From<brain_automation::rules::Step> for PlannedStep {
    fn from(step: brain_automation::rules::Step) -> Self {
        use brain_automation::rules::Step;
        match step {
            Step::ConnectorAction(a) => PlannedStep::ConnectorAction {
                connector: a.connector,
                action: a.action,
                args: a.args,
            },
            Step::AgentTask(a) => PlannedStep::AgentTask {
                agent_id: a.agent_id,
                input: a.input,
            },
            Step::Approval(a) => PlannedStep::Approval { role: a.role },
            Step::CrewRun(c) => PlannedStep::CrewRun {
                crew_id: c.crew_id,
                input: c.input,
            },
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleActionInput {
    pub task_id: Uuid,
    pub tenant: Uuid,
    pub rule_id: Uuid,
    pub seq: u32,
    pub connector: String,
    pub action: String,
    /// Templates over `context`.
    pub args: Value,
    /// `{event, steps: [{output}], rule}`.
    pub context: Value,
    pub idempotency_key: String,
}

/// The record of a step an activity writes (approvals, rejections, refusals).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepNote {
    pub task_id: Uuid,
    pub tenant: Uuid,
    pub step: StepRecord,
    /// The task's status from now on, if it changes.
    #[serde(default)]
    pub task_status: Option<TaskStatus>,
    /// The call this step refused, when the run's gate refused one (its audit is written
    /// with the step: a refused delegation is an `agent.delegate` event, as in chat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<RefusedCall>,
}

/// A tool call a run's gate refused, and who made it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RefusedCall {
    pub agent_id: Uuid,
    pub call: ToolCall,
    pub why: ToolError,
}

/// Input of the crew-run workflow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CrewRunInput {
    pub task_id: Uuid,
    pub tenant: Uuid,
    pub crew_id: Uuid,
    pub input: String,
    #[serde(default)]
    pub parent_task: Option<Uuid>,
    pub timeouts: StepTimeouts,
}

/// An agent of a crew, as the run's prompts name it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CrewMember {
    pub agent_id: Uuid,
    pub name: String,
    pub slug: String,
    pub role: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CrewPlanTask {
    pub description: String,
    pub expected_output: String,
    pub agent_id: Uuid,
}

/// What a crew run executes, fixed when it starts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CrewPlan {
    pub task_id: Uuid,
    pub name: String,
    pub process: brain_automation::crews::Process,
    pub manager: Option<CrewMember>,
    pub members: Vec<CrewMember>,
    pub tasks: Vec<CrewPlanTask>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each value's stored name is its JSON name and parses back; nothing else parses.
    fn round_trips<T>(all: &[T], as_str: fn(T) -> &'static str, parse: fn(&str) -> Option<T>)
    where
        T: Copy + PartialEq + std::fmt::Debug + Serialize,
    {
        for &v in all {
            assert_eq!(serde_json::to_value(v).unwrap(), as_str(v));
            assert_eq!(parse(as_str(v)), Some(v));
        }
        assert_eq!(parse("Running"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn planned_steps_read_what_history_holds_and_convert_from_the_api_type() {
        let api: Vec<brain_automation::rules::Step> = serde_json::from_value(serde_json::json!([
            {"connector_action": {"connector": "slack", "action": "post_message",
                                  "args": {"text": "{{ event.id }}"}}},
            {"agent_task": {"agent_id": "0190d5c0-0000-7000-8000-000000000001", "input": "go"}},
            {"approval": {"role": "admin"}},
            {"crew_run": {"crew_id": "0190d5c0-0000-7000-8000-000000000002", "input": "go"}},
        ]))
        .unwrap();
        // What history holds today: the API type's JSON.
        let history = serde_json::to_value(&api).unwrap();
        let read: Vec<PlannedStep> = serde_json::from_value(history.clone()).unwrap();
        let converted: Vec<PlannedStep> = api.into_iter().map(PlannedStep::from).collect();
        assert_eq!(read, converted);
        // And it writes the same JSON back, so old and new workers agree.
        assert_eq!(serde_json::to_value(&read).unwrap(), history);
    }

    #[test]
    fn statuses_and_kinds_keep_one_name_in_storage_json_and_code() {
        use StepStatus as S;
        use TaskStatus as T;
        round_trips(
            &[
                T::Queued,
                T::Running,
                T::AwaitingApproval,
                T::Succeeded,
                T::Failed,
                T::Cancelled,
            ],
            T::as_str,
            T::parse,
        );
        round_trips(
            &[
                S::Running,
                S::Succeeded,
                S::Failed,
                S::AwaitingApproval,
                S::Approved,
                S::Rejected,
                S::Cancelled,
            ],
            S::as_str,
            S::parse,
        );
        round_trips(
            &[TaskKind::Agent, TaskKind::Crew, TaskKind::Rule],
            TaskKind::as_str,
            TaskKind::parse,
        );
        round_trips(
            &[
                StepKind::Llm,
                StepKind::Tool,
                StepKind::Approval,
                StepKind::Action,
                StepKind::AgentTask,
            ],
            StepKind::as_str,
            StepKind::parse,
        );
        round_trips(
            &[
                CallbackStatus::Pending,
                CallbackStatus::Delivered,
                CallbackStatus::Failed,
            ],
            CallbackStatus::as_str,
            CallbackStatus::parse,
        );
        assert!(TaskStatus::AwaitingApproval == "awaiting_approval");
        assert_eq!(StepKind::AgentTask.to_string(), "agent_task");
    }
}
