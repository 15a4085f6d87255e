//! Published agents over A2A 1.0 (JSON-RPC binding). An agent is reachable only once its
//! tenant published it (`PUT /v1/agents/{id}/a2a`):
//!
//! * `GET /a2a/{tenant}/{agent}/.well-known/agent-card.json` — the card (public, like any
//!   A2A card: it names the agent and says how to call it, nothing more);
//! * `POST /a2a/{tenant}/{agent}` — `SendMessage`, `SendStreamingMessage`, `GetTask`,
//!   `CancelTask`, with a bearer token or API key of that tenant (`tasks:invoke` to send or
//!   cancel, `agents:read` to read).
//!
//! Every message starts one of Brain's durable tasks (Temporal), so A2A tasks have Brain's
//! guarantees: grants, approvals, budget, audit, retries. States map as queued → SUBMITTED,
//! running → WORKING, awaiting_approval → AUTH_REQUIRED (a person must approve a tool call in
//! Brain), succeeded → COMPLETED (the reply is the artifact `reply`), failed → FAILED,
//! cancelled → CANCELED.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use brain_agents::{AgentError, AgentSpec};
use brain_auth::principal::Authenticated;
use brain_auth::{Permission, Principal, TenantId};
use brain_runtime::RuntimeError;
use brain_tasks::TaskStatus as BrainStatus;
use brain_tasks::{NewTask, TaskView};
use brain_tools::a2a::wire::{
    self, AgentCard, AgentInterface, Artifact, ArtifactUpdate, Capabilities, Message, Part, Role,
    SendMessageParams, SendResult, Skill, StatusUpdate, StreamResponse, Task, TaskIdParams,
    TaskState, TaskStatus, code,
};
use futures::{Stream, StreamExt};
use serde_json::Value;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// How long a blocking `SendMessage` waits for its task to settle before answering it as
/// still working (the client then polls `GetTask` or streams).
const SEND_WAIT: Duration = Duration::from_secs(45);
/// How often a waiting request looks at its task.
const POLL: Duration = Duration::from_millis(150);
/// The longest a stream follows its task.
const STREAM_WAIT: Duration = Duration::from_secs(600);

pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/a2a/{tenant}/{agent}/.well-known/agent-card.json",
            get(card),
        )
        .route("/a2a/{tenant}/{agent}", post(rpc))
        .with_state(state)
}

/// The endpoint of a published agent, e.g. `https://brain.example.com/a2a/acme/writer`.
pub fn endpoint(state: &AppState, tenant_slug: &str, agent_slug: &str) -> String {
    format!("{}/a2a/{tenant_slug}/{agent_slug}", state.public_url)
}

/// The tenant and agent of `/a2a/{tenant}/{agent}` when that agent is published.
async fn published(
    state: &AppState,
    tenant_slug: &str,
    agent_slug: &str,
) -> Result<(TenantId, AgentSpec), ApiError> {
    let not_found = || ApiError::not_found("agent");
    let tenant = brain_auth::accounts::tenant_by_slug(&state.db, tenant_slug)
        .await?
        .ok_or_else(not_found)?;
    let agent = match state.runtime.get_agent_by_slug(tenant, agent_slug).await {
        Ok(agent) => agent,
        Err(RuntimeError::Agent(AgentError::NotFound)) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    let mut tx = brain_migrations::begin_tenant(&state.db, tenant)
        .await
        .map_err(ApiError::internal)?;
    let published: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM a2a_published_agents WHERE agent_id = $1)",
    )
    .bind(agent.id.0)
    .fetch_one(&mut *tx)
    .await
    .map_err(ApiError::internal)?;
    tx.commit().await.map_err(ApiError::internal)?;
    if !published {
        return Err(not_found());
    }
    Ok((tenant, agent))
}

async fn card(
    State(state): State<AppState>,
    Path((tenant_slug, agent_slug)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (_, agent) = published(&state, &tenant_slug, &agent_slug).await?;
    let card = AgentCard {
        name: agent.name.clone(),
        description: format!("{} — {}", agent.role.as_str(), agent.goal.as_str()),
        supported_interfaces: vec![AgentInterface {
            url: endpoint(&state, &tenant_slug, &agent_slug),
            protocol_binding: wire::JSONRPC_BINDING.to_owned(),
            protocol_version: wire::PROTOCOL_VERSION.to_owned(),
        }],
        version: agent.version.to_string(),
        capabilities: Capabilities { streaming: true },
        default_input_modes: vec!["text/plain".to_owned()],
        default_output_modes: vec!["text/plain".to_owned()],
        skills: vec![Skill {
            id: agent.slug.as_str().to_owned(),
            name: agent.name.clone(),
            description: agent.goal.as_str().to_owned(),
            tags: vec![agent.role.as_str().to_owned()],
        }],
    };
    Ok(axum::Json(card).into_response())
}

/// A JSON-RPC answer (HTTP 200, as the binding answers errors too).
fn answer(body: Value) -> Response {
    axum::Json(body).into_response()
}

async fn rpc(
    State(state): State<AppState>,
    Path((tenant_slug, agent_slug)): Path<(String, String)>,
    Authenticated(principal): Authenticated,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (tenant, agent) = published(&state, &tenant_slug, &agent_slug).await?;
    if principal.tenant != tenant {
        // Another tenant's agent does not exist for this caller.
        return Err(ApiError::not_found("agent"));
    }
    let request: wire::Request = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            let body = wire::error(&Value::Null, code::PARSE_ERROR, format!("Parse error: {e}"));
            return Ok((StatusCode::BAD_REQUEST, axum::Json(body)).into_response());
        }
    };
    let needs = match request.method.as_str() {
        "GetTask" => Permission::AgentsRead,
        _ => Permission::TasksInvoke,
    };
    if !principal.allows(needs) {
        return Err(ApiError::forbidden(format!(
            "this action needs the `{}` permission",
            needs.as_str()
        )));
    }
    let call = Call {
        state,
        principal,
        agent,
        id: request.id,
    };
    Ok(match request.method.as_str() {
        "SendMessage" => call.send(request.params).await,
        "SendStreamingMessage" => call.stream(request.params).await,
        "GetTask" => call.get(request.params).await,
        "CancelTask" => call.cancel(request.params).await,
        other => answer(wire::error(
            &call.id,
            code::METHOD_NOT_FOUND,
            format!(
                "Method not found: `{other}` (Brain speaks A2A {})",
                wire::PROTOCOL_VERSION
            ),
        )),
    })
}

/// One JSON-RPC call to a published agent by a caller of its tenant.
struct Call {
    state: AppState,
    principal: Principal,
    agent: AgentSpec,
    id: Value,
}

/// An A2A task as Brain keeps it: its durable task, context and first message.
struct Started {
    task_id: Uuid,
    context_id: String,
    message_id: String,
}

fn params<T: serde::de::DeserializeOwned>(params: Value) -> Result<T, (i64, String)> {
    serde_json::from_value(params)
        .map_err(|e| (code::INVALID_PARAMS, format!("Invalid params: {e}")))
}

impl Call {
    fn error(&self, (code, message): (i64, String)) -> Response {
        answer(wire::error(&self.id, code, message))
    }

    fn internal(&self, error: impl std::fmt::Display) -> Response {
        tracing::error!(error = %error, "an A2A request failed");
        self.error((code::INTERNAL, "Internal error".to_owned()))
    }

    async fn send(self, raw: Value) -> Response {
        let (started, wait) = match self.start(raw).await {
            Ok(started) => started,
            Err(e) => return self.error(e),
        };
        let deadline = Instant::now() + if wait { SEND_WAIT } else { Duration::ZERO };
        let mut view = match self.view(started.task_id).await {
            Ok(view) => view,
            Err(e) => return self.internal(e),
        };
        while !state_of(view.status).is_settled() && Instant::now() < deadline {
            tokio::time::sleep(POLL).await;
            view = match self.view(started.task_id).await {
                Ok(view) => view,
                Err(e) => return self.internal(e),
            };
        }
        let task = to_task(&view, &started);
        answer(wire::result(&self.id, SendResult::Task(task)))
    }

    async fn stream(self, raw: Value) -> Response {
        let (started, _) = match self.start(raw).await {
            Ok(started) => started,
            Err(e) => return self.error(e),
        };
        let events = follow(self, started);
        Sse::new(events)
            .keep_alive(KeepAlive::default())
            .into_response()
    }

    async fn get(self, raw: Value) -> Response {
        let started = match self.find(raw).await {
            Ok(started) => started,
            Err(e) => return self.error(e),
        };
        match self.view(started.task_id).await {
            Ok(view) => answer(wire::result(&self.id, to_task(&view, &started))),
            Err(e) => self.internal(e),
        }
    }

    async fn cancel(self, raw: Value) -> Response {
        let started = match self.find(raw).await {
            Ok(started) => started,
            Err(e) => return self.error(e),
        };
        let tenant = self.principal.tenant;
        if let Err(e) = self.state.tasks.cancel(tenant, started.task_id).await {
            let e = ApiError::from(e);
            return self.error((code::TASK_NOT_CANCELABLE, e.message().to_owned()));
        }
        match self.view(started.task_id).await {
            Ok(view) => answer(wire::result(&self.id, to_task(&view, &started))),
            Err(e) => self.internal(e),
        }
    }

    async fn view(&self, task: Uuid) -> Result<TaskView, brain_tasks::TaskError> {
        self.state.tasks.get(self.principal.tenant, task).await
    }

    /// The durable task answering a `SendMessage`: started for a new message, the earlier one
    /// for a message id seen before. Also whether the client waits for it.
    async fn start(&self, raw: Value) -> Result<(Started, bool), (i64, String)> {
        let invalid = |message: &str| (code::INVALID_PARAMS, message.to_owned());
        let SendMessageParams {
            message,
            configuration,
        } = params(raw)?;
        if message.role != Role::User {
            return Err(invalid("message.role must be ROLE_USER"));
        }
        if !(1..=200).contains(&message.message_id.len()) {
            return Err(invalid("message.messageId must be 1 to 200 characters"));
        }
        if message.task_id.is_some() {
            return Err((
                code::UNSUPPORTED_OPERATION,
                "Brain answers every message with a new task: send it without taskId (a \
                 contextId groups messages)"
                    .to_owned(),
            ));
        }
        let text = wire::text_of(&message.parts);
        if text.trim().is_empty() {
            return Err(invalid("the message has no text"));
        }
        let wait = !configuration.is_some_and(|c| c.return_immediately);
        let tenant = self.principal.tenant;
        let agent = self.agent.id.0;
        if let Some(started) = self.known(&message.message_id).await? {
            return Ok((started, wait));
        }
        let task = NewTask {
            input: text,
            idempotency_key: None,
            callback_url: None,
            output_schema: None,
        };
        let new = self
            .state
            .tasks
            .start_agent_task(tenant, agent, task)
            .await
            .map_err(|e| {
                let e = ApiError::from(e);
                (
                    code::INVALID_PARAMS,
                    format!("{}: {}", e.code(), e.message()),
                )
            })?;
        let context_id = message
            .context_id
            .filter(|c| (1..=200).contains(&c.len()))
            .unwrap_or_else(|| new.task_id.to_string());
        let recorded = async {
            let mut tx = self.principal.begin(&self.state.db).await?;
            sqlx::query(
                "INSERT INTO a2a_tasks (task_id, tenant_id, agent_id, context_id, message_id) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (agent_id, message_id) DO NOTHING",
            )
            .bind(new.task_id)
            .bind(tenant.0)
            .bind(agent)
            .bind(&context_id)
            .bind(&message.message_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        };
        recorded
            .await
            .map_err(|e| (code::INTERNAL, format!("Internal error: {e}")))?;
        let started = Started {
            task_id: new.task_id,
            context_id,
            message_id: message.message_id,
        };
        Ok((started, wait))
    }

    /// The task that answered `message_id` of this agent before, if any.
    async fn known(&self, message_id: &str) -> Result<Option<Started>, (i64, String)> {
        self.lookup("message_id = $2", message_id).await
    }

    /// The A2A task `GetTask`/`CancelTask` name, if it is one of this agent's.
    async fn find(&self, raw: Value) -> Result<Started, (i64, String)> {
        let TaskIdParams { id } = params(raw)?;
        let not_found = || (code::TASK_NOT_FOUND, "Task not found".to_owned());
        let task = Uuid::parse_str(&id).map_err(|_| not_found())?;
        self.lookup("task_id = $2::text::uuid", &task.to_string())
            .await?
            .ok_or_else(not_found)
    }

    async fn lookup(&self, condition: &str, value: &str) -> Result<Option<Started>, (i64, String)> {
        let found = async {
            let mut tx = self.principal.begin(&self.state.db).await?;
            let row: Option<(Uuid, String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT task_id, context_id, message_id FROM a2a_tasks \
                 WHERE agent_id = $1 AND {condition}"
            )))
            .bind(self.agent.id.0)
            .bind(value)
            .fetch_optional(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(row)
        };
        let row = found
            .await
            .map_err(|e| (code::INTERNAL, format!("Internal error: {e}")))?;
        Ok(row.map(|(task_id, context_id, message_id)| Started {
            task_id,
            context_id,
            message_id,
        }))
    }
}

fn state_of(status: BrainStatus) -> TaskState {
    match status {
        BrainStatus::Queued => TaskState::Submitted,
        BrainStatus::Running => TaskState::Working,
        BrainStatus::AwaitingApproval => TaskState::AuthRequired,
        BrainStatus::Succeeded => TaskState::Completed,
        BrainStatus::Failed => TaskState::Failed,
        BrainStatus::Cancelled => TaskState::Canceled,
    }
}

fn agent_message(started: &Started, text: String) -> Message {
    Message {
        message_id: Uuid::now_v7().to_string(),
        role: Role::Agent,
        parts: vec![Part::text(text)],
        context_id: Some(started.context_id.clone()),
        task_id: Some(started.task_id.to_string()),
    }
}

fn reply_artifact(view: &TaskView, started: &Started) -> Option<Artifact> {
    let reply = view.output.as_ref()?.get("reply")?.as_str()?;
    Some(Artifact {
        artifact_id: format!("{}-reply", started.task_id),
        name: Some("reply".to_owned()),
        parts: vec![Part::text(reply)],
    })
}

fn status_of(view: &TaskView, started: &Started) -> TaskStatus {
    let message = match view.status {
        BrainStatus::Failed => Some(view.error.clone().unwrap_or_else(|| "failed".to_owned())),
        BrainStatus::AwaitingApproval => Some(format!(
            "A person must approve a tool call of this task in Brain (task {}).",
            started.task_id
        )),
        _ => None,
    };
    TaskStatus {
        state: state_of(view.status),
        message: message.map(|text| agent_message(started, text)),
        timestamp: Some(view.updated_at.to_rfc3339()),
    }
}

fn to_task(view: &TaskView, started: &Started) -> Task {
    let input = view
        .input
        .get("input")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Task {
        id: started.task_id.to_string(),
        context_id: started.context_id.clone(),
        status: status_of(view, started),
        artifacts: reply_artifact(view, started).into_iter().collect(),
        history: vec![Message {
            message_id: started.message_id.clone(),
            role: Role::User,
            parts: vec![Part::text(input)],
            context_id: Some(started.context_id.clone()),
            task_id: Some(started.task_id.to_string()),
        }],
    }
}

/// The stream of a `SendStreamingMessage`: the task, then each change of its state (the reply
/// as an artifact just before `COMPLETED`), until it settles or the client leaves.
fn follow(call: Call, started: Started) -> impl Stream<Item = Result<Event, Infallible>> {
    let (events, received) = futures::channel::mpsc::unbounded::<Value>();
    tokio::spawn(async move {
        let deadline = Instant::now() + STREAM_WAIT;
        let mut last: Option<TaskState> = None;
        loop {
            let view = match call.view(started.task_id).await {
                Ok(view) => view,
                Err(e) => {
                    tracing::error!(error = %e, "an A2A stream lost its task");
                    let _ = events.unbounded_send(wire::error(
                        &call.id,
                        code::INTERNAL,
                        "Internal error",
                    ));
                    return;
                }
            };
            let state = state_of(view.status);
            if last != Some(state) {
                let mut updates = Vec::new();
                if last.is_none() {
                    updates.push(StreamResponse::Task(to_task(&view, &started)));
                } else {
                    if let Some(artifact) = reply_artifact(&view, &started) {
                        updates.push(StreamResponse::ArtifactUpdate(ArtifactUpdate {
                            task_id: started.task_id.to_string(),
                            context_id: started.context_id.clone(),
                            artifact,
                        }));
                    }
                    updates.push(StreamResponse::StatusUpdate(StatusUpdate {
                        task_id: started.task_id.to_string(),
                        context_id: started.context_id.clone(),
                        status: status_of(&view, &started),
                    }));
                }
                for update in updates {
                    if events
                        .unbounded_send(wire::result(&call.id, update))
                        .is_err()
                    {
                        return; // the client left
                    }
                }
                last = Some(state);
            }
            if state.is_settled() || Instant::now() > deadline || events.is_closed() {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
    });
    received.map(|event| Ok(Event::default().data(event.to_string())))
}
