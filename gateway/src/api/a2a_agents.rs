//! `/v1/integrations/a2a-agents…`: remote A2A agents a tenant's agents may ask — registered
//! like MCP servers (`brain_tools::mcp::McpServers` with `Protocol::A2a`): the card is read on
//! save and on demand, the auth secret is in Vault and never shown again, and each agent is
//! one tool, `ask`, granted as `{"a2a_agent": "<slug>"}` and seen by the model as
//! `a2a_<slug>__ask`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use brain_auth::{Authorized, require};
use brain_tools::mcp::{McpServerPatch, McpServerView, NewMcpServer, Protocol};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::{ApiError, ApiJson};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
        .routes(routes!(refresh))
}

/// The tenant's remote A2A agents, each with its one tool. Needs `connectors:read`.
#[utoipa::path(get, path = "/v1/integrations/a2a-agents", tag = "integrations",
    responses((status = 200, description = "The remote agents", body = Vec<McpServerView>)))]
async fn list(
    State(state): State<AppState>,
    auth: Authorized<require::ConnectorsRead>,
) -> Result<Json<Vec<McpServerView>>, ApiError> {
    let tenant = auth.principal().tenant;
    Ok(Json(
        state.connectors.mcp().list(tenant, Protocol::A2a).await?,
    ))
}

/// Registers a remote agent after reading its card (`url` is its base URL or its card's URL;
/// an agent Brain cannot reach, whose card offers no A2A 1.x JSON-RPC interface, or whose
/// URLs the egress policy refuses, is not kept). Needs `connectors:manage`.
#[utoipa::path(post, path = "/v1/integrations/a2a-agents", tag = "integrations",
    request_body = NewMcpServer,
    responses((status = 201, description = "The remote agent", body = McpServerView)))]
async fn create(
    State(state): State<AppState>,
    auth: Authorized<require::ConnectorsManage>,
    ApiJson(mut body): ApiJson<NewMcpServer>,
) -> Result<Response, ApiError> {
    let tenant = auth.principal().tenant;
    body.protocol = Protocol::A2a;
    let view = state.connectors.mcp().create(tenant, body).await?;
    Ok(super::mcp_servers::audited(StatusCode::CREATED, view))
}

/// One remote agent. Needs `connectors:read`.
#[utoipa::path(get, path = "/v1/integrations/a2a-agents/{id}", tag = "integrations",
    params(("id" = Uuid, Path, description = "The remote agent")),
    responses((status = 200, description = "The remote agent", body = McpServerView)))]
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
            .get(tenant, Protocol::A2a, id)
            .await?,
    ))
}

/// Renames, moves, re-authenticates, enables or disables a remote agent; a new `url` or
/// `auth` reads the card again first. A disabled agent's tool stops working on the next call.
/// Needs `connectors:manage`.
#[utoipa::path(patch, path = "/v1/integrations/a2a-agents/{id}", tag = "integrations",
    params(("id" = Uuid, Path, description = "The remote agent")),
    request_body = McpServerPatch,
    responses((status = 200, description = "The remote agent", body = McpServerView)))]
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
        .update(tenant, Protocol::A2a, id, body)
        .await?;
    Ok(super::mcp_servers::audited(StatusCode::OK, view))
}

/// Forgets a remote agent, its secret and every agent's grant of it. Needs `connectors:manage`.
#[utoipa::path(delete, path = "/v1/integrations/a2a-agents/{id}", tag = "integrations",
    params(("id" = Uuid, Path, description = "The remote agent")),
    responses((status = 200, description = "The remote agent as it was", body = McpServerView)))]
async fn remove(
    State(state): State<AppState>,
    auth: Authorized<require::ConnectorsManage>,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let tenant = auth.principal().tenant;
    let view = state
        .connectors
        .mcp()
        .delete(tenant, Protocol::A2a, id)
        .await?;
    Ok(super::mcp_servers::audited(StatusCode::OK, view))
}

/// Reads the agent's card again (after it changed). Needs `connectors:manage`.
#[utoipa::path(post, path = "/v1/integrations/a2a-agents/{id}/refresh", tag = "integrations",
    params(("id" = Uuid, Path, description = "The remote agent")),
    responses((status = 200, description = "The remote agent as its card now says",
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
        .refresh(tenant, Protocol::A2a, id)
        .await?;
    Ok(super::mcp_servers::audited(StatusCode::OK, view))
}
