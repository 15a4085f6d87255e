//! What the pages show: the gateway's and auth service's answers as far as the portal reads
//! them (unknown fields are ignored, missing ones default), and the outcome of a form.

use std::collections::BTreeMap;

use brain_types::status::TaskStatus;
use brain_types::{Permission, Role};
use serde::{Deserialize, Serialize};
use serde_json::Value;

mod tools;
pub use tools::{Grant, SourceTool, ToolSource, ToolSourceAuth, ToolSourceKind};

/// The signed-in user, as `GET /v1/auth/me` describes them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Me {
    pub email: String,
    pub role: String,
    pub tenant: String,
}

/// What the portal shows a person follows the server's own permission matrix
/// (`brain_types::access`); an unknown role counts as a viewer.
impl Me {
    fn may(&self, permission: Permission) -> bool {
        self.role
            .parse::<Role>()
            .unwrap_or_default()
            .allows(permission)
    }

    /// `agents.write`: settings, tool grants.
    pub fn can_edit_agents(&self) -> bool {
        self.may(Permission::AgentsWrite)
    }

    /// `chat`.
    pub fn can_chat(&self) -> bool {
        self.may(Permission::Chat)
    }

    /// `knowledge.write`: collections and uploads.
    pub fn can_write_knowledge(&self) -> bool {
        self.may(Permission::KnowledgeWrite)
    }

    /// `tasks.invoke`: start agent tasks and crew runs.
    pub fn can_run(&self) -> bool {
        self.may(Permission::TasksInvoke)
    }

    /// `tasks.approve`.
    pub fn can_approve(&self) -> bool {
        self.may(Permission::TasksApprove)
    }

    /// `connectors.manage` (and with it integrations and API keys, which need the same role).
    pub fn can_manage(&self) -> bool {
        self.may(Permission::ConnectorsManage)
    }

    /// `audit.read`.
    pub fn can_read_audit(&self) -> bool {
        self.may(Permission::AuditRead)
    }
}

/// Another agent this one may ask (`ask_<slug>`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DelegateGrant {
    pub agent: String,
    pub approval: String,
    pub max_calls_per_run: Option<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Agent {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub role: String,
    pub goal: String,
    pub backstory: String,
    pub temperature: f32,
    pub model: String,
    pub max_tokens: u32,
    pub knowledge_collections: Vec<String>,
    pub tools: Vec<Grant>,
    pub delegates: Vec<DelegateGrant>,
    pub status: String,
    pub version: i32,
    pub updated_at: String,
}

/// One task of a crew.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CrewTask {
    pub description: String,
    pub expected_output: String,
    pub agent_id: Option<String>,
}

/// Agents working together on a list of tasks: in order (`sequential`) or handed out by a
/// manager (`hierarchical`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Crew {
    pub id: String,
    pub name: String,
    pub members: Vec<String>,
    pub process: String,
    pub manager_agent_id: Option<String>,
    pub tasks: Vec<CrewTask>,
    pub version: i32,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthField {
    pub field: String,
    pub label: String,
    pub kind: String,
    pub required: bool,
    pub help: Option<String>,
    pub options: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ActionDef {
    pub name: String,
    pub description: String,
    pub side_effect: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Connector {
    pub id: String,
    pub name: String,
    pub category: String,
    pub description: String,
    pub auth_schema: Vec<AuthField>,
    pub actions: Vec<ActionDef>,
    pub resources: Vec<String>,
    pub status: String,
    pub last_checked_at: Option<String>,
    pub last_error: Option<String>,
    /// Stored fields: non-secret values as given, secret ones masked by the gateway.
    pub fields: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Collection {
    pub id: String,
    pub name: String,
    pub embedder: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Document {
    pub id: String,
    pub collection_id: String,
    pub title: String,
    pub filename: String,
    pub status: String,
    pub error: Option<String>,
    pub pages: u32,
    pub chunks: u32,
    pub progress: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Citation {
    pub document_id: String,
    pub title: String,
    pub page: u32,
    pub snippet: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ToolCall {
    pub id: String,
    pub connector: String,
    pub action: String,
    pub args: Value,
    pub status: String,
    pub result_summary: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Message {
    pub id: String,
    pub role: String,
    pub content: String,
    pub citations: Vec<Citation>,
    pub tool_calls: Vec<ToolCall>,
    pub created_at: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Conversation {
    pub id: String,
    pub title: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Step {
    pub seq: i32,
    pub kind: String,
    pub status: String,
    pub call_id: Option<String>,
    pub connector: Option<String>,
    pub action: Option<String>,
    pub detail: Value,
    pub error: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Task {
    pub task_id: String,
    pub kind: String,
    pub agent_id: Option<String>,
    pub rule_id: Option<String>,
    pub crew_id: Option<String>,
    /// The crew run or rule run this task is a step of.
    pub parent_task_id: Option<String>,
    pub status: String,
    pub input: Value,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub steps: Vec<Step>,
}

impl Task {
    /// Whether the task has ended (it changes no more).
    pub fn is_final(&self) -> bool {
        TaskStatus::parse(&self.status).is_some_and(TaskStatus::is_final)
    }

    /// What the task was asked, as text.
    pub fn input_text(&self) -> String {
        self.input
            .as_str()
            .or_else(|| self.input.get("input").and_then(Value::as_str))
            .map_or_else(|| self.input.to_string(), str::to_owned)
    }

    /// Its answer, as text.
    pub fn reply(&self) -> Option<String> {
        self.output
            .as_ref()
            .and_then(|o| {
                o.get("reply")
                    .and_then(Value::as_str)
                    .or_else(|| o.as_str())
            })
            .map(str::to_owned)
    }
}

/// What a crew member's task is doing while the run goes on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MemberProgress {
    pub status: String,
    /// Its latest step, e.g. `llm running` or `hubspot.create_contact awaiting approval`.
    pub activity: Option<String>,
}

/// A task followed live through its run events (`GET /v1/tasks/{id}/events`): the task, and
/// for a crew run what each member's child task is doing.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveRun {
    pub task: Task,
    /// By child task id.
    pub members: BTreeMap<String, MemberProgress>,
}

impl LiveRun {
    pub fn new(task: Task) -> Self {
        Self {
            task,
            members: BTreeMap::new(),
        }
    }

    /// Folds one event in; true when it is the watched task's end (`done`).
    pub fn apply(&mut self, event: &str, data: &Value) -> bool {
        let task_id = data
            .get("task_id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mine = task_id == self.task.task_id;
        let status = data
            .get("status")
            .and_then(Value::as_str)
            .map(str::to_owned);
        match event {
            "snapshot" => {
                if let Ok(task) = serde_json::from_value::<Task>(data.clone())
                    && task.task_id == self.task.task_id
                {
                    self.task = task;
                }
                false
            }
            "step" => {
                let Some(step) = data
                    .get("step")
                    .and_then(|s| serde_json::from_value::<Step>(s.clone()).ok())
                else {
                    return false;
                };
                if mine {
                    merge_step(&mut self.task.steps, step);
                } else if !task_id.is_empty() {
                    let what = match (&step.connector, &step.action) {
                        (Some(c), Some(a)) => format!("{c}.{a}"),
                        _ => step.kind.clone(),
                    };
                    let member = self.members.entry(task_id.to_owned()).or_default();
                    member.activity = Some(format!("{what} {}", step.status.replace('_', " ")));
                    if step.status == "awaiting_approval" {
                        member.status = step.status;
                    } else if member.status.is_empty() || member.status == "awaiting_approval" {
                        member.status = "running".to_owned();
                    }
                }
                false
            }
            "status" | "child_done" | "done" => {
                let Some(status) = status else {
                    return false;
                };
                if mine {
                    self.task.status = status;
                    event == "done"
                } else {
                    self.members.entry(task_id.to_owned()).or_default().status = status;
                    false
                }
            }
            _ => false,
        }
    }
}

/// Writes a step into `steps` (a later event of the same step updates it; details merge the
/// way the task store merges them).
fn merge_step(steps: &mut Vec<Step>, step: Step) {
    match steps.iter_mut().find(|s| s.seq == step.seq) {
        Some(known) => {
            if let (Some(into), Some(from)) =
                (known.detail.as_object_mut(), step.detail.as_object())
            {
                for (k, v) in from {
                    into.insert(k.clone(), v.clone());
                }
            } else if !step.detail.is_null() {
                known.detail = step.detail;
            }
            known.status = step.status;
            known.error = step.error;
            known.kind = step.kind;
            if step.call_id.is_some() {
                known.call_id = step.call_id;
            }
        }
        None => {
            steps.push(step);
            steps.sort_by_key(|s| s.seq);
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditActor {
    pub kind: String,
    pub id: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditEvent {
    pub id: String,
    pub at: String,
    pub actor: AuditActor,
    pub action: String,
    pub resource: String,
    pub details: Value,
    pub hash: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Webhook {
    pub id: String,
    pub connector: String,
    pub events: Vec<String>,
    pub url: String,
    pub status: String,
    pub last_delivery_at: Option<String>,
    pub deliveries_ok: i64,
    pub deliveries_failed: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Rule {
    pub id: String,
    pub name: String,
    pub enabled: bool,
    pub trigger: Value,
    pub steps: Vec<Value>,
}

impl Rule {
    /// The connectors the rule touches: its trigger's platform and its action steps'.
    pub fn connectors(&self) -> Vec<String> {
        let mut found = Vec::new();
        if let Some(event) = self.trigger.get("event").and_then(Value::as_str)
            && let Some((connector, _)) = event.split_once('.')
        {
            found.push(connector.to_owned());
        }
        for step in &self.steps {
            if let Some(c) = step
                .pointer("/connector_action/connector")
                .and_then(Value::as_str)
                && !found.iter().any(|f| f == c)
            {
                found.push(c.to_owned());
            }
        }
        found
    }

    pub fn trigger_label(&self) -> String {
        let event = self
            .trigger
            .get("event")
            .and_then(Value::as_str)
            .unwrap_or("?");
        match self.trigger.get("cron").and_then(Value::as_str) {
            Some(cron) if event == "schedule" => format!("schedule ({cron})"),
            _ => event.to_owned(),
        }
    }
}

/// One point of a chart: a label (a day, a campaign) and its value.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub label: String,
    pub value: f64,
}

/// A business-data widget of the dashboard, read live through one connector.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Widget {
    pub connector: String,
    pub connector_name: String,
    pub title: String,
    /// `connected`, `disconnected`, `error`, or `failed` (the read went wrong).
    pub status: String,
    pub message: Option<String>,
    pub unit: String,
    pub points: Vec<Point>,
}

/// The result of a form: success with a message (and, once, a secret to show), or an error,
/// with the field it concerns when the API named one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub ok: bool,
    pub message: String,
    pub field: Option<String>,
    /// Shown once: a new API key or webhook secret.
    pub secret: Option<String>,
}

impl Outcome {
    pub fn ok(message: impl Into<String>) -> Self {
        Self {
            ok: true,
            message: message.into(),
            ..Self::default()
        }
    }

    /// An error from the API; `validation_failed` messages read `field: what is wrong`.
    pub fn error(message: impl Into<String>) -> Self {
        let message = message.into();
        let field = message
            .split_once(':')
            .map(|(field, _)| field.trim())
            .filter(|f| {
                !f.is_empty()
                    && f.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            })
            .map(str::to_owned);
        Self {
            ok: false,
            message,
            field,
            secret: None,
        }
    }

    /// The error message when it concerns `field`.
    pub fn error_for(&self, field: &str) -> Option<String> {
        (!self.ok && self.field.as_deref() == Some(field)).then(|| self.message.clone())
    }
}

/// Health of the platform: `/readyz` and the gateway's metrics.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub ready: bool,
    pub dependencies: Vec<(String, String)>,
    pub requests_total: f64,
    /// Requests per second since the previous look, when there was one.
    pub request_rate: Option<f64>,
    pub error_rate: f64,
    pub p99_seconds: Option<f64>,
    pub tokens_today: i64,
    pub tokens_by_agent: Vec<Point>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_messages_name_their_field() {
        let o = Outcome::error("temperature: must be between 0.0 and 2.0");
        assert_eq!(o.field.as_deref(), Some("temperature"));
        assert!(o.error_for("temperature").is_some());
        assert!(o.error_for("goal").is_none());
        assert_eq!(Outcome::error("the gateway is down: try later").field, None);
    }

    #[test]
    fn rules_name_the_connectors_they_touch() {
        let rule: Rule = serde_json::from_value(serde_json::json!({
            "id": "r", "name": "n", "enabled": true,
            "trigger": {"event": "hubspot.contact.updated"},
            "steps": [{"connector_action": {"connector": "slack", "action": "post_message"}},
                      {"agent_task": {"agent_id": "a", "input": "x"}}],
        }))
        .unwrap_or_default();
        assert_eq!(rule.connectors(), ["hubspot", "slack"]);
    }

    #[test]
    fn run_events_update_the_run_and_its_members() {
        let task: Task = serde_json::from_value(serde_json::json!({
            "task_id": "run", "kind": "crew", "status": "queued", "input": {"input": "Go"},
        }))
        .unwrap_or_default();
        let mut live = LiveRun::new(task);
        let step = |status: &str, detail: Value| {
            serde_json::json!({"type": "step", "task_id": "run",
                "step": {"seq": 0, "kind": "agent_task", "status": status, "detail": detail}})
        };
        assert!(!live.apply(
            "status",
            &serde_json::json!({"task_id": "run", "status": "running"})
        ));
        live.apply(
            "step",
            &step(
                "running",
                serde_json::json!({"agent": "Writer", "task_id": "c1"}),
            ),
        );
        live.apply(
            "step",
            &serde_json::json!({"type": "step", "task_id": "c1",
            "step": {"seq": 0, "kind": "llm", "status": "running", "detail": {}}}),
        );
        assert_eq!(live.members["c1"].activity.as_deref(), Some("llm running"));
        live.apply(
            "child_done",
            &serde_json::json!({"task_id": "c1", "status": "succeeded"}),
        );
        live.apply(
            "step",
            &step("succeeded", serde_json::json!({"output": "An outline"})),
        );
        assert_eq!(live.task.status, "running");
        assert_eq!(live.task.steps.len(), 1);
        // The output joined the agent and child task named when the step began.
        assert_eq!(live.task.steps[0].detail["agent"], "Writer");
        assert_eq!(live.task.steps[0].detail["output"], "An outline");
        assert_eq!(live.members["c1"].status, "succeeded");
        assert!(live.apply(
            "done",
            &serde_json::json!({"task_id": "run", "status": "succeeded"})
        ));
        assert!(live.task.is_final());
    }

    #[test]
    fn roles_gate_the_controls() {
        let viewer = Me {
            role: "viewer".into(),
            ..Me::default()
        };
        assert!(!viewer.can_edit_agents() && !viewer.can_chat() && !viewer.can_manage());
        let editor = Me {
            role: "editor".into(),
            ..Me::default()
        };
        assert!(editor.can_chat() && editor.can_write_knowledge() && !editor.can_edit_agents());
        let admin = Me {
            role: "admin".into(),
            ..Me::default()
        };
        assert!(admin.can_manage() && admin.can_approve() && admin.can_read_audit());
        let unknown = Me {
            role: "root".into(),
            ..Me::default()
        };
        assert!(!unknown.can_chat() && !unknown.can_manage());
    }
}
