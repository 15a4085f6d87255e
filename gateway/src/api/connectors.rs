//! `/v1/connectors…`: thin handlers over `brain_tools::ConnectorService` — the registry with
//! per-tenant status, connecting (credentials to Vault), testing, resource reads and admin
//! actions.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use brain_auth::{Authorized, require};
use brain_tools::ConnectorView;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{ApiError, ApiJson, ApiQuery, Code};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/connectors", get(list))
        .route("/v1/connectors/{id}", get(show))
        .route(
            "/v1/connectors/{id}/connection",
            put(connect).delete(disconnect),
        )
        .route("/v1/connectors/{id}/test", post(test))
        .route("/v1/connectors/{id}/resources/{resource}", get(resource))
        .route("/v1/connectors/{id}/actions/{action}", post(action))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectBody {
    credentials: BTreeMap<String, String>,
}

async fn list(
    State(state): State<AppState>,
    auth: Authorized<require::ConnectorsRead>,
) -> Result<Json<Vec<ConnectorView>>, ApiError> {
    let tenant = auth.principal().tenant;
    Ok(Json(state.connectors.list(tenant).await?))
}

async fn show(
    State(state): State<AppState>,
    auth: Authorized<require::ConnectorsRead>,
    Path(id): Path<String>,
) -> Result<Json<ConnectorView>, ApiError> {
    let tenant = auth.principal().tenant;
    Ok(Json(state.connectors.get(tenant, &id).await?))
}

async fn connect(
    State(state): State<AppState>,
    auth: Authorized<require::ConnectorsManage>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ConnectBody>,
) -> Result<Json<ConnectorView>, ApiError> {
    let tenant = auth.principal().tenant;
    let view = state
        .connectors
        .connect(tenant, &id, body.credentials)
        .await?;
    Ok(Json(view))
}

async fn disconnect(
    State(state): State<AppState>,
    auth: Authorized<require::ConnectorsManage>,
    Path(id): Path<String>,
) -> Result<Json<ConnectorView>, ApiError> {
    let tenant = auth.principal().tenant;
    Ok(Json(state.connectors.disconnect(tenant, &id).await?))
}

async fn test(
    State(state): State<AppState>,
    auth: Authorized<require::ConnectorsManage>,
    Path(id): Path<String>,
) -> Result<Json<ConnectorView>, ApiError> {
    let tenant = auth.principal().tenant;
    Ok(Json(state.connectors.test(tenant, &id).await?))
}

async fn resource(
    State(state): State<AppState>,
    auth: Authorized<require::ConnectorsRead>,
    Path((id, resource)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<BTreeMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let tenant = auth.principal().tenant;
    let value = state
        .connectors
        .resource(tenant, &id, &resource, &query)
        .await?;
    Ok(Json(value))
}

/// The body is the action's arguments; a retry-safe write sends `Idempotency-Key`.
async fn action(
    State(state): State<AppState>,
    auth: Authorized<require::ConnectorsManage>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(args): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    let tenant = auth.principal().tenant;
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .filter(|k| !k.is_empty() && k.len() <= 255)
                .ok_or_else(|| {
                    ApiError::new(
                        Code::InvalidIdempotencyKey,
                        "Idempotency-Key must be 1 to 255 visible ASCII characters",
                    )
                })?,
        ),
    };
    let value = state
        .connectors
        .action(tenant, &id, &action, args, key)
        .await?;
    Ok(Json(value))
}
