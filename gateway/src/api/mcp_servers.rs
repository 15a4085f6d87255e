//! `/v1/integrations/mcp-servers…`: the tenant's MCP servers as tool sources — thin handlers
//! over `brain_tools::mcp::McpServers` (tools listed on save and on demand, the auth secret
//! in Vault and never shown again).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use brain_auth::{Authorized, require};
use brain_tools::mcp::{McpServerPatch, McpServerView, NewMcpServer, Protocol};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::audit::with_details;
use crate::error::{ApiError, ApiJson};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
        .routes(routes!(refresh))
}

/// The tenant's MCP servers with the tools each listed. Needs `connectors:read`.
#[utoipa::path(get, path = "/v1/integrations/mcp-servers", tag = "integrations",
    responses((status = 200, description = "The servers", body = Vec<McpServerView>)))]
async fn list(
    State(state): State<AppState>,
    auth: Authorized<require::ConnectorsRead>,
) -> Result<Json<Vec<McpServerView>>, ApiError> {
    let tenant = auth.principal().tenant;
    Ok(Json(
        state.connectors.mcp().list(tenant, Protocol::Mcp).await?,
    ))
}

/// Registers a server after connecting to it and listing its tools (a server Brain cannot
/// reach, or whose URL the egress policy refuses, is not kept). Needs `connectors:manage`.
#[utoipa::path(post, path = "/v1/integrations/mcp-servers", tag = "integrations",
    request_body = NewMcpServer,
    responses((status = 201, description = "The server with its tools", body = McpServerView)))]
async fn create(
    State(state): State<AppState>,
    auth: Authorized<require::ConnectorsManage>,
    ApiJson(body): ApiJson<NewMcpServer>,
) -> Result<Response, ApiError> {
    let tenant = auth.principal().tenant;
    let view = state.connectors.mcp().create(tenant, body).await?;
    Ok(audited(StatusCode::CREATED, view))
}

/// One server with the tools it listed when last refreshed. Needs `connectors:read`.
#[utoipa::path(get, path = "/v1/integrations/mcp-servers/{id}", tag = "integrations",
    params(("id" = Uuid, Path, description = "The server")),
    responses((status = 200, description = "The server", body = McpServerView)))]
async fn show(
    State(state): State<AppState>,
    auth: Authorized<require::ConnectorsRead>,
    Path(id): Path<Uuid>,
) -> Result<Json<McpServerView>, ApiError> {
    let tenant = auth.principal().tenant;
    Ok(Json(
        state
            .connectors
            .mcp()
            .get(tenant, Protocol::Mcp, id)
            .await?,
    ))
}

/// Renames, moves, re-authenticates, enables or disables a server; a new `url` or `auth`
/// lists the tools again first. A disabled server's tools stop working on the next call.
/// Needs `connectors:manage`.
#[utoipa::path(patch, path = "/v1/integrations/mcp-servers/{id}", tag = "integrations",
    params(("id" = Uuid, Path, description = "The server")),
    request_body = McpServerPatch,
    responses((status = 200, description = "The server", body = McpServerView)))]
async fn update(
    State(state): State<AppState>,
    auth: Authorized<require::ConnectorsManage>,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<McpServerPatch>,
) -> Result<Response, ApiError> {
    let tenant = auth.principal().tenant;
    let view = state
        .connectors
        .mcp()
        .update(tenant, Protocol::Mcp, id, body)
        .await?;
    Ok(audited(StatusCode::OK, view))
}

/// Forgets a server, its secret and every agent's grant of it. Needs `connectors:manage`.
#[utoipa::path(delete, path = "/v1/integrations/mcp-servers/{id}", tag = "integrations",
    params(("id" = Uuid, Path, description = "The server")),
    responses((status = 200, description = "The server as it was", body = McpServerView)))]
async fn remove(
    State(state): State<AppState>,
    auth: Authorized<require::ConnectorsManage>,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let tenant = auth.principal().tenant;
    let view = state
        .connectors
        .mcp()
        .delete(tenant, Protocol::Mcp, id)
        .await?;
    Ok(audited(StatusCode::OK, view))
}

/// Lists the server's tools again (after it changed them). Needs `connectors:manage`.
#[utoipa::path(post, path = "/v1/integrations/mcp-servers/{id}/refresh", tag = "integrations",
    params(("id" = Uuid, Path, description = "The server")),
    responses((status = 200, description = "The server with its current tools",
        body = McpServerView)))]
async fn refresh(
    State(state): State<AppState>,
    auth: Authorized<require::ConnectorsManage>,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let tenant = auth.principal().tenant;
    let view = state
        .connectors
        .mcp()
        .refresh(tenant, Protocol::Mcp, id)
        .await?;
    Ok(audited(StatusCode::OK, view))
}

/// The view, with the server's slug, URL and tool count as the audit event's details.
pub(super) fn audited(status: StatusCode, view: McpServerView) -> Response {
    let details = json!({"slug": view.slug, "url": view.url, "tools": view.tools.len()});
    with_details(status, view, details)
}
