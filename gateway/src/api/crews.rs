//! Crews: agents working together on a list of tasks, and their durable runs.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use brain_auth::{Authorized, require};
use brain_automation::crews::{CrewInput, CrewPatch};
use brain_tasks::NewCrewRun;
use serde_json::{Value, json};
use uuid::Uuid;

use super::if_match;
use crate::error::{ApiError, ApiJson};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/crews", get(list).post(create))
        .route("/v1/crews/{id}", get(show).patch(update).delete(remove))
        .route("/v1/crews/{id}/runs", post(run))
}

fn crew_id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse::<Uuid>().map_err(|_| ApiError::not_found("crew"))
}

async fn list(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsRead>,
) -> Result<Json<Value>, ApiError> {
    let crews = state.tasks.crews().list(auth.principal().tenant).await?;
    Ok(Json(json!({ "crews": crews })))
}

async fn show(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsRead>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let crew = state
        .tasks
        .crews()
        .get(auth.principal().tenant, crew_id(&id)?)
        .await?;
    Ok(Json(
        serde_json::to_value(crew).map_err(ApiError::internal)?,
    ))
}

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

async fn update(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsWrite>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(patch): ApiJson<CrewPatch>,
) -> Result<Json<Value>, ApiError> {
    let expected = if_match(&headers)?;
    let crew = state
        .tasks
        .crews()
        .update(auth.principal().tenant, crew_id(&id)?, patch, expected)
        .await?;
    Ok(Json(
        serde_json::to_value(crew).map_err(ApiError::internal)?,
    ))
}

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
