//! Crews: agents working together on a list of tasks, and their durable runs.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use brain_auth::{Authorized, require};
use brain_automation::crews::{Crew, CrewInput, CrewPatch};
use brain_tasks::{NewCrewRun, StartedTask};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::if_match;
use crate::error::{ApiError, ApiJson};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
        .routes(routes!(run))
}

/// The tenant's crews.
#[derive(Serialize, ToSchema)]
struct CrewList {
    crews: Vec<Crew>,
}

fn crew_id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse::<Uuid>().map_err(|_| ApiError::not_found("crew"))
}

/// The tenant's crews. Needs `agents:read`.
#[utoipa::path(get, path = "/v1/crews", tag = "crews",
    responses((status = 200, description = "The crews", body = CrewList)))]
async fn list(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsRead>,
) -> Result<Json<CrewList>, ApiError> {
    let crews = state.tasks.crews().list(auth.principal().tenant).await?;
    Ok(Json(CrewList { crews }))
}

/// One crew. Needs `agents:read`.
#[utoipa::path(get, path = "/v1/crews/{id}", tag = "crews",
    params(("id" = Uuid, Path, description = "The crew")),
    responses((status = 200, description = "The crew", body = Crew)))]
async fn show(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsRead>,
    Path(id): Path<String>,
) -> Result<Json<Crew>, ApiError> {
    let crew = state
        .tasks
        .crews()
        .get(auth.principal().tenant, crew_id(&id)?)
        .await?;
    Ok(Json(crew))
}

/// Creates a crew of the tenant's agents. Needs `agents:write`.
#[utoipa::path(post, path = "/v1/crews", tag = "crews", request_body = CrewInput,
    responses((status = 201, description = "The new crew", body = Crew)))]
async fn create(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsWrite>,
    ApiJson(body): ApiJson<CrewInput>,
) -> Result<Response, ApiError> {
    let crew = state
        .tasks
        .crews()
        .create(auth.principal().tenant, body)
        .await?;
    Ok((StatusCode::CREATED, Json(crew)).into_response())
}

/// Changes the fields the patch carries; with `If-Match`, only if the crew is still at that
/// version. Needs `agents:write`.
#[utoipa::path(patch, path = "/v1/crews/{id}", tag = "crews",
    params(("id" = Uuid, Path, description = "The crew"),
        ("If-Match" = Option<String>, Header,
            description = "The crew's `version` this change is based on (409 if it moved on)")),
    request_body = CrewPatch,
    responses((status = 200, description = "The updated crew", body = Crew)))]
async fn update(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsWrite>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(patch): ApiJson<CrewPatch>,
) -> Result<Json<Crew>, ApiError> {
    let expected = if_match(&headers)?;
    let crew = state
        .tasks
        .crews()
        .update(auth.principal().tenant, crew_id(&id)?, patch, expected)
        .await?;
    Ok(Json(crew))
}

/// Deletes a crew; its past runs stay. Needs `agents:write`.
#[utoipa::path(delete, path = "/v1/crews/{id}", tag = "crews",
    params(("id" = Uuid, Path, description = "The crew")),
    responses((status = 204, description = "The crew was deleted")))]
async fn remove(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .tasks
        .crews()
        .delete(auth.principal().tenant, crew_id(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts a durable run of the crew (a task of kind `crew`; follow it with
/// `GET /v1/tasks/{id}` or its events). Needs `tasks:invoke`.
#[utoipa::path(post, path = "/v1/crews/{id}/runs", tag = "crews",
    params(("id" = Uuid, Path, description = "The crew")),
    request_body = NewCrewRun,
    responses((status = 202, description = "The run was started (or, for a repeated \
        idempotency key, already had been)", body = StartedTask)))]
async fn run(
    State(state): State<AppState>,
    auth: Authorized<require::TasksInvoke>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewCrewRun>,
) -> Result<Response, ApiError> {
    let started = state
        .tasks
        .start_crew_run(auth.principal().tenant, crew_id(&id)?, body)
        .await
        .map_err(|e| match e {
            brain_tasks::TaskError::NotFound => ApiError::not_found("crew"),
            other => ApiError::from(other),
        })?;
    Ok((StatusCode::ACCEPTED, Json(started)).into_response())
}
