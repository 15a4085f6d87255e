//! Durable tasks: start an agent task (202), follow it with its steps, approve or reject a
//! parked tool call, cancel it.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use brain_auth::audit::{self, AuditEvent, Recorded};
use brain_auth::{Actor, Authorized, require};
use brain_tasks::{
    Approver, NewTask, ReadError, RunEvent, StartedTask, TaskFilter, TaskStatus, TaskView,
};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::{ApiError, ApiJson, ApiQuery, Code};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start))
        .routes(routes!(list))
        .routes(routes!(show))
        .routes(routes!(decide))
        .routes(routes!(cancel))
        .routes(routes!(events))
}

fn uuid(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    raw.parse::<Uuid>().map_err(|_| ApiError::not_found(what))
}

/// Starts a durable task of the agent; follow it with `GET /v1/tasks/{id}` or its events.
/// Needs `tasks:invoke`.
#[utoipa::path(post, path = "/v1/agents/{id}/tasks", tag = "tasks",
    params(("id" = Uuid, Path, description = "The agent")),
    request_body = NewTask,
    responses((status = 202, description = "The task was started (or, for a repeated \
        idempotency key, already had been)", body = StartedTask)))]
async fn start(
    State(state): State<AppState>,
    auth: Authorized<require::TasksInvoke>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewTask>,
) -> Result<Response, ApiError> {
    let agent = uuid(&id, "agent")?;
    let started = state
        .tasks
        .start_agent_task(auth.principal().tenant, agent, body)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(started)).into_response())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only tasks in this status (`queued`, `running`, `awaiting_approval`, `succeeded`,
    /// `failed`, `cancelled`).
    status: Option<String>,
    /// Only tasks of this agent.
    agent_id: Option<Uuid>,
    /// Runs of this crew.
    crew_id: Option<Uuid>,
    /// Tasks to answer, 1 to 200 (default 50).
    limit: Option<i64>,
}

/// The tenant's tasks, newest first.
#[derive(Serialize, ToSchema)]
struct TaskList {
    /// Without their steps (`steps` is empty); `GET /v1/tasks/{id}` has them.
    tasks: Vec<TaskView>,
}

/// The tenant's tasks, newest first, with filters. Needs `agents:read`.
#[utoipa::path(get, path = "/v1/tasks", tag = "tasks", params(ListQuery),
    responses((status = 200, description = "The tasks", body = TaskList)))]
async fn list(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsRead>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<TaskList>, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be 1 to 200"));
    }
    let status = match query.status.as_deref() {
        None => None,
        Some(s) => Some(TaskStatus::parse(s).ok_or_else(|| {
            ApiError::invalid(
                "status",
                "one of queued, running, awaiting_approval, succeeded, failed, cancelled",
            )
        })?),
    };
    let tasks = state
        .tasks
        .list(
            auth.principal().tenant,
            TaskFilter {
                status,
                agent: query.agent_id,
                crew: query.crew_id,
            },
            limit,
        )
        .await?;
    Ok(Json(TaskList { tasks }))
}

/// One task with every step, in order. Needs `agents:read`.
#[utoipa::path(get, path = "/v1/tasks/{id}", tag = "tasks",
    params(("id" = Uuid, Path, description = "The task")),
    responses((status = 200, description = "The task and its steps", body = TaskView)))]
async fn show(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsRead>,
    Path(id): Path<String>,
) -> Result<Json<TaskView>, ApiError> {
    let task = state
        .tasks
        .get(auth.principal().tenant, uuid(&id, "task")?)
        .await?;
    Ok(Json(task))
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
enum Decision {
    Approve,
    Reject,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    decision: Decision,
    /// Why: written to the audit log, and a rejection's note is passed on to the agent.
    #[serde(default)]
    note: Option<String>,
}

/// The decision as it was handed to the task.
#[derive(Serialize, ToSchema)]
struct DecisionView {
    task_id: Uuid,
    call_id: String,
    decision: Decision,
}

/// The stop was asked for.
#[derive(Serialize, ToSchema)]
struct CancelView {
    task_id: Uuid,
    /// Always `cancelling`: the task ends as `cancelled` once its workflow has stopped.
    status: &'static str,
}

fn actor_label(actor: Actor) -> String {
    format!("{}:{}", actor.kind(), actor.id())
}

/// Approves or rejects a tool call the task is parked on (its step is `awaiting_approval`).
/// Needs the `tasks.approve` permission (owners and admins; no API-key scope grants it).
#[utoipa::path(post, path = "/v1/tasks/{id}/approvals/{call_id}", tag = "tasks",
    params(("id" = Uuid, Path, description = "The task"),
        ("call_id" = String, Path, description = "The parked step's `call_id`")),
    request_body = DecisionBody,
    responses((status = 202, description = "The decision was handed to the task, which \
        resumes", body = DecisionView)))]
async fn decide(
    State(state): State<AppState>,
    auth: Authorized<require::TasksApprove>,
    Path((id, call_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<DecisionBody>,
) -> Result<Response, ApiError> {
    let principal = auth.principal();
    let task = uuid(&id, "task")?;
    let approve = body.decision == Decision::Approve;
    let approver = Approver {
        actor: actor_label(principal.actor),
        role: principal.role,
    };
    state
        .tasks
        .decide(
            principal.tenant,
            &approver,
            task,
            &call_id,
            approve,
            body.note.clone(),
        )
        .await?;
    // The decision is the audit event, named for what was decided.
    let action = if approve {
        "task.approve"
    } else {
        "task.reject"
    };
    let mut tx = principal.begin(&state.db).await?;
    audit::append(
        &mut tx,
        principal.tenant,
        AuditEvent::by(
            principal.actor,
            action,
            format!("tasks/{task}/approvals/{call_id}"),
            json!({"call_id": call_id, "note": body.note}),
        ),
    )
    .await?;
    tx.commit().await?;
    let view = DecisionView {
        task_id: task,
        call_id,
        decision: body.decision,
    };
    let mut response = (StatusCode::ACCEPTED, Json(view)).into_response();
    response.extensions_mut().insert(Recorded);
    Ok(response)
}

/// Asks a running task to stop; it ends as `cancelled` when it does. Needs `tasks:invoke`.
#[utoipa::path(post, path = "/v1/tasks/{id}/cancel", tag = "tasks",
    params(("id" = Uuid, Path, description = "The task")),
    responses((status = 202, description = "The task is stopping", body = CancelView)))]
async fn cancel(
    State(state): State<AppState>,
    auth: Authorized<require::TasksInvoke>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let task = uuid(&id, "task")?;
    state.tasks.cancel(auth.principal().tenant, task).await?;
    let view = CancelView {
        task_id: task,
        status: "cancelling",
    };
    Ok((StatusCode::ACCEPTED, Json(view)).into_response())
}

/// How long one read of the event stream waits before checking the task in Postgres.
const EVENTS_POLL: std::time::Duration = std::time::Duration::from_secs(10);

fn sse_event(name: &str, data: &impl serde::Serialize) -> Event {
    Event::default()
        .event(name)
        .json_data(data)
        .unwrap_or_else(|_| Event::default().event("error"))
}

/// The task's events as they happen, as server-sent events. Needs `agents:read`.
///
/// First the task as it is (`snapshot`), then its run events as they happen — `step`,
/// `status`, and `done` last — wherever the run executes (the events travel through Redis).
/// A crew run's stream carries its members' steps too (each event names its `task_id`), and
/// a member task's end as `child_done`.
///
/// All streams of an instance share one Redis reader (see `brain_tasks::events`).
/// Each run event carries its stream id; a client reconnecting with `Last-Event-ID` gets the
/// snapshot and then only later events. A tenant has at most `BRAIN_MAX_STREAMS_PER_TENANT`
/// open streams per instance (429 `too_many_streams` beyond), and a stream ends after
/// `BRAIN_STREAM_MAX_SECS` (browsers' `EventSource` reconnects and resumes by itself).
#[utoipa::path(get, path = "/v1/tasks/{id}/events", tag = "tasks",
    params(("id" = Uuid, Path, description = "The task"),
        ("Last-Event-ID" = Option<String>, Header,
            description = "The last event id seen: resume after it")),
    responses((status = 200, description = "Server-sent events: `snapshot` (the task), then \
        `step`, `status`, `child_done` and `done` (run events), or `error`",
        content_type = "text/event-stream", body = String)))]
async fn events(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsRead>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let tenant = auth.principal().tenant;
    let task_id = uuid(&id, "task")?;
    let slot = state.streams.acquire(tenant).ok_or_else(|| {
        ApiError::new(
            Code::TooManyStreams,
            "this workspace has too many open event streams; close some and retry",
        )
        .with_retry_after(5)
    })?;
    let snapshot = state.tasks.get(tenant, task_id).await?;
    let resume = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let reader = state
        .events
        .subscribe(task_id, resume)
        .await
        .map_err(ApiError::unavailable)?;
    let finished = Some(snapshot.status).filter(|s| s.is_final());
    let first = vec![sse_event("snapshot", &snapshot)];
    let tasks = state.tasks.clone();
    let ends_at = tokio::time::Instant::now() + state.streams.max_age;
    // (reader, events to send first, whether the stream has ended); the slot is held until
    // the stream is dropped.
    let stream = futures::stream::unfold(
        (reader, first, finished, false, slot),
        move |(mut reader, pending, finished, ended, slot)| {
            let tasks = tasks.clone();
            async move {
                if ended {
                    return None;
                }
                if !pending.is_empty() {
                    return Some((pending, (reader, Vec::new(), finished, false, slot)));
                }
                if let Some(status) = finished {
                    let done = RunEvent::Done { task_id, status };
                    return Some((vec![sse_event("done", &done)], (reader, Vec::new(), None, true, slot)));
                }
                let left = ends_at.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    // The client reconnects with the last id it saw.
                    return None;
                }
                match reader.next(EVENTS_POLL.min(left)).await {
                    Ok(events) if !events.is_empty() => {
                        let last = events.iter().any(
                            |(_, e)| matches!(e, RunEvent::Done { task_id: t, .. } if *t == task_id),
                        );
                        // `done` is the watched task's end; a member task's end is `child_done`.
                        let out = events
                            .iter()
                            .map(|(id, e)| match e {
                                RunEvent::Done { task_id: t, .. } if *t != task_id => {
                                    sse_event("child_done", e).id(id)
                                }
                                _ => sse_event(e.name(), e).id(id),
                            })
                            .collect();
                        Some((out, (reader, Vec::new(), None, last, slot)))
                    }
                    // Nothing new: the run may have ended while the stream expired or lagged.
                    Ok(_) => {
                        let status = tasks
                            .get(tenant, task_id)
                            .await
                            .ok()
                            .map(|t| t.status)
                            .filter(|s| s.is_final());
                        Some((Vec::new(), (reader, Vec::new(), status, false, slot)))
                    }
                    // Fell behind: end here; the client resumes after the last id it saw.
                    Err(ReadError::Lagged) => None,
                    Err(e) => {
                        tracing::warn!(error = %e, "task event stream failed");
                        let error = json!({"code": "events_unavailable", "message": "the event stream failed; reload the task"});
                        Some((vec![sse_event("error", &error)], (reader, Vec::new(), None, true, slot)))
                    }
                }
            }
        },
    )
    .flat_map(|events| futures::stream::iter(events.into_iter().map(Ok::<_, std::convert::Infallible>)));
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}
