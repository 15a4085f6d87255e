//! Durable tasks: start an agent task (202), follow it with its steps, approve or reject a
//! parked tool call, cancel it.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use brain_auth::audit::{self, AuditEvent, Recorded};
use brain_auth::{Actor, Authorized, require};
use brain_tasks::{Approver, NewTask, ReadError, RunEvent, TaskFilter, TaskStatus};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::error::{ApiError, ApiJson, ApiQuery, Code};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/agents/{id}/tasks", post(start))
        .route("/v1/tasks", get(list))
        .route("/v1/tasks/{id}", get(show))
        .route("/v1/tasks/{id}/approvals/{call_id}", post(decide))
        .route("/v1/tasks/{id}/cancel", post(cancel))
        .route("/v1/tasks/{id}/events", get(events))
}

fn uuid(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    raw.parse::<Uuid>().map_err(|_| ApiError::not_found(what))
}

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    agent_id: Option<Uuid>,
    /// Runs of this crew.
    crew_id: Option<Uuid>,
    limit: Option<i64>,
}

async fn list(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsRead>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::new(
            Code::ValidationFailed,
            "limit: must be 1 to 200",
        ));
    }
    let status = match query.status.as_deref() {
        None => None,
        Some(s) => Some(TaskStatus::parse(s).ok_or_else(|| {
            ApiError::new(
                Code::ValidationFailed,
                "status: one of queued, running, awaiting_approval, succeeded, failed, cancelled",
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
    Ok(Json(json!({ "tasks": tasks })))
}

async fn show(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsRead>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let task = state
        .tasks
        .get(auth.principal().tenant, uuid(&id, "task")?)
        .await?;
    Ok(Json(
        serde_json::to_value(task).map_err(ApiError::internal)?,
    ))
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Decision {
    Approve,
    Reject,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    decision: Decision,
    #[serde(default)]
    note: Option<String>,
}

fn actor_label(actor: Actor) -> String {
    format!("{}:{}", actor.kind(), actor.id())
}

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
    let mut response = (
        StatusCode::ACCEPTED,
        Json(json!({"task_id": task, "call_id": call_id,
                    "decision": if approve { "approve" } else { "reject" }})),
    )
        .into_response();
    response.extensions_mut().insert(Recorded);
    Ok(response)
}

async fn cancel(
    State(state): State<AppState>,
    auth: Authorized<require::TasksInvoke>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let task = uuid(&id, "task")?;
    state.tasks.cancel(auth.principal().tenant, task).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"task_id": task, "status": "cancelling"})),
    )
        .into_response())
}

/// How long one read of the event stream waits before checking the task in Postgres.
const EVENTS_POLL: std::time::Duration = std::time::Duration::from_secs(10);

fn sse_event(name: &str, data: &impl serde::Serialize) -> Event {
    Event::default()
        .event(name)
        .json_data(data)
        .unwrap_or_else(|_| Event::default().event("error"))
}

/// `GET /v1/tasks/{id}/events`: the task as it is (`snapshot`), then its run events as they
/// happen — `step`, `status`, and `done` last — wherever the run executes (the events travel
/// through Redis). A crew run's stream carries its members' steps too (each event names its
/// `task_id`), and a member task's end as `child_done`.
///
/// All streams of an instance share one Redis reader (see `brain_tasks::events`).
/// Each run event carries its stream id; a client reconnecting with `Last-Event-ID` gets the
/// snapshot and then only later events. A tenant has at most `BRAIN_MAX_STREAMS_PER_TENANT`
/// open streams per instance (429 `too_many_streams` beyond), and a stream ends after
/// `BRAIN_STREAM_MAX_SECS` (browsers' `EventSource` reconnects and resumes by itself).
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
