//! `/v1/connectors…`: thin handlers over `brain_tools::ConnectorService` — the registry with
//! per-tenant status, connecting (credentials to Vault), testing, resource reads and admin
//! actions.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use brain_auth::{Authorized, require};
use brain_tools::{ConnectorView, ToolError};
use serde::Deserialize;
use serde_json::Value;

use crate::error::{ApiError, ApiJson, ApiQuery};
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
    Ok(Json(
        state.connectors.list(tenant).await.map_err(api_error)?,
    ))
}

async fn show(
    State(state): State<AppState>,
    auth: Authorized<require::ConnectorsRead>,
    Path(id): Path<String>,
) -> Result<Json<ConnectorView>, ApiError> {
    let tenant = auth.principal().tenant;
    Ok(Json(
        state.connectors.get(tenant, &id).await.map_err(api_error)?,
    ))
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
        .await
        .map_err(api_error)?;
    Ok(Json(view))
}

async fn disconnect(
    State(state): State<AppState>,
    auth: Authorized<require::ConnectorsManage>,
    Path(id): Path<String>,
) -> Result<Json<ConnectorView>, ApiError> {
    let tenant = auth.principal().tenant;
    Ok(Json(
        state
            .connectors
            .disconnect(tenant, &id)
            .await
            .map_err(api_error)?,
    ))
}

async fn test(
    State(state): State<AppState>,
    auth: Authorized<require::ConnectorsManage>,
    Path(id): Path<String>,
) -> Result<Json<ConnectorView>, ApiError> {
    let tenant = auth.principal().tenant;
    Ok(Json(
        state
            .connectors
            .test(tenant, &id)
            .await
            .map_err(api_error)?,
    ))
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
        .await
        .map_err(api_error)?;
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
                    ApiError::bad_request(
                        "invalid_idempotency_key",
                        "Idempotency-Key must be 1 to 255 visible ASCII characters",
                    )
                })?,
        ),
    };
    let value = state
        .connectors
        .action(tenant, &id, &action, args, key)
        .await
        .map_err(api_error)?;
    Ok(Json(value))
}

/// Maps the connector library's errors to the API's codes. Messages of `ToolError` never
/// carry credentials (platform messages are redacted before they get here).
pub(super) fn api_error(e: ToolError) -> ApiError {
    let message = e.to_string();
    match &e {
        ToolError::UnknownConnector(_)
        | ToolError::UnknownAction { .. }
        | ToolError::UnknownResource { .. } => {
            ApiError::new(StatusCode::NOT_FOUND, e.code(), message)
        }
        ToolError::InvalidArguments { .. }
        | ToolError::InvalidCredentials { .. }
        | ToolError::EgressRefused { .. } => ApiError::unprocessable(e.code(), message),
        ToolError::NotConnected(_)
        | ToolError::IdempotencyInProgress(_)
        | ToolError::IdempotencyConflict(_)
        | ToolError::AmbiguousWrite { .. } => ApiError::conflict(e.code(), message),
        ToolError::GrantNotFound { .. }
        | ToolError::GrantRevoked { .. }
        | ToolError::ActionNotGranted { .. } => {
            ApiError::new(StatusCode::FORBIDDEN, e.code(), message)
        }
        ToolError::WebhookNotFound | ToolError::DeliveryNotFound => {
            ApiError::new(StatusCode::NOT_FOUND, e.code(), message)
        }
        ToolError::InvalidWebhook(_) => ApiError::unprocessable(e.code(), message),
        ToolError::MalformedDelivery(_) => ApiError::bad_request(e.code(), message),
        ToolError::InvalidSignature(_) => {
            ApiError::new(StatusCode::UNAUTHORIZED, e.code(), message)
        }
        ToolError::RateLimited { retry_after, .. } => {
            ApiError::too_many_requests(retry_after.map(|d| d.as_secs()).unwrap_or(30), message)
        }
        ToolError::Unauthorized { .. }
        | ToolError::Platform { .. }
        | ToolError::Unreachable { .. }
        | ToolError::BadResponse { .. } => {
            ApiError::new(StatusCode::BAD_GATEWAY, e.code(), message)
        }
        ToolError::Database(_)
        | ToolError::Cache(_)
        | ToolError::Secrets(_)
        | ToolError::Internal(_) => ApiError::internal(e),
    }
}
