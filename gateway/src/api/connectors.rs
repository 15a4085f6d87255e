//! `/v1/connectors…`: thin handlers over `brain_tools::ConnectorService` — the registry with
//! per-tenant status, connecting (credentials to Vault), testing, resource reads and admin
//! actions.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use brain_auth::{Authorized, require};
use brain_tools::ConnectorView;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiJson, ApiQuery, Code};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show))
        .routes(routes!(connect, disconnect))
        .routes(routes!(test))
        .routes(routes!(resource))
        .routes(routes!(action))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ConnectBody {
    /// One value per field of the connector's `auth_schema`; secret ones go to the secret
    /// store, never to the database.
    credentials: BTreeMap<String, String>,
}

/// Every connector with the tenant's connection status. Needs `connectors:manage`.
#[utoipa::path(get, path = "/v1/connectors", tag = "connectors",
    responses((status = 200, description = "Every connector", body = Vec<ConnectorView>)))]
async fn list(
    State(state): State<AppState>,
    auth: Authorized<require::ConnectorsRead>,
) -> Result<Json<Vec<ConnectorView>>, ApiError> {
    let tenant = auth.principal().tenant;
    Ok(Json(state.connectors.list(tenant).await?))
}

/// One connector with the tenant's connection status. Needs `connectors:manage`.
#[utoipa::path(get, path = "/v1/connectors/{id}", tag = "connectors",
    params(("id" = String, Path, description = "The connector, e.g. `hubspot`")),
    responses((status = 200, description = "The connector", body = ConnectorView)))]
async fn show(
    State(state): State<AppState>,
    auth: Authorized<require::ConnectorsRead>,
    Path(id): Path<String>,
) -> Result<Json<ConnectorView>, ApiError> {
    let tenant = auth.principal().tenant;
    Ok(Json(state.connectors.get(tenant, &id).await?))
}

/// Connects the tenant (or replaces its credentials) after checking them against the
/// platform. Needs `connectors:manage`.
#[utoipa::path(put, path = "/v1/connectors/{id}/connection", tag = "connectors",
    params(("id" = String, Path, description = "The connector, e.g. `hubspot`")),
    request_body = ConnectBody,
    responses((status = 200, description = "The connector, now connected", body = ConnectorView)))]
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

/// Disconnects the tenant and forgets its credentials. Needs `connectors:manage`.
#[utoipa::path(delete, path = "/v1/connectors/{id}/connection", tag = "connectors",
    params(("id" = String, Path, description = "The connector, e.g. `hubspot`")),
    responses((status = 200, description = "The connector, now disconnected",
        body = ConnectorView)))]
async fn disconnect(
    State(state): State<AppState>,
    auth: Authorized<require::ConnectorsManage>,
    Path(id): Path<String>,
) -> Result<Json<ConnectorView>, ApiError> {
    let tenant = auth.principal().tenant;
    Ok(Json(state.connectors.disconnect(tenant, &id).await?))
}

/// Checks the stored credentials against the platform and records the outcome. Needs
/// `connectors:manage`.
#[utoipa::path(post, path = "/v1/connectors/{id}/test", tag = "connectors",
    params(("id" = String, Path, description = "The connector, e.g. `hubspot`")),
    responses((status = 200, description = "The connector with the test's outcome",
        body = ConnectorView)))]
async fn test(
    State(state): State<AppState>,
    auth: Authorized<require::ConnectorsManage>,
    Path(id): Path<String>,
) -> Result<Json<ConnectorView>, ApiError> {
    let tenant = auth.principal().tenant;
    Ok(Json(state.connectors.test(tenant, &id).await?))
}

/// Reads one of the connector's `resources` (briefly cached). Needs `connectors:manage`.
#[utoipa::path(get, path = "/v1/connectors/{id}/resources/{resource}", tag = "connectors",
    params(
        ("id" = String, Path, description = "The connector, e.g. `hubspot`"),
        ("resource" = String, Path, description = "One of the connector's `resources`"),
        ("query" = Option<BTreeMap<String, String>>, Query, style = Form, explode,
            description = "The resource's own parameters (`per_page`, `limit`, …), passed on"),
    ),
    responses((status = 200, description = "The platform's data, as the connector shapes it",
        body = Object)))]
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

/// Runs one of the connector's `actions`; the body is its arguments (checked against its
/// `parameters` schema), and a retry-safe write sends `Idempotency-Key`. Needs
/// `connectors:manage`.
#[utoipa::path(post, path = "/v1/connectors/{id}/actions/{action}", tag = "connectors",
    params(
        ("id" = String, Path, description = "The connector, e.g. `hubspot`"),
        ("action" = String, Path, description = "One of the connector's `actions`"),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII \
            characters; a repeated side-effecting action with the same key is done once"),
    ),
    request_body(content = Object, description = "The action's arguments"),
    responses((status = 200, description = "The action's result, as the connector shapes it",
        body = Object)))]
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
