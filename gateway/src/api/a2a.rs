//! Publishing an agent over A2A (opt-in per agent): `GET|PUT|DELETE /v1/agents/{id}/a2a`.
//! The protocol itself is served by [`crate::a2a`].

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use brain_agents::AgentId;
use brain_auth::{Authorized, Principal, require};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(show, publish, unpublish))
}

/// Whether the agent is published over A2A, and where.
#[derive(Serialize, ToSchema)]
struct Publication {
    published: bool,
    /// The agent card, fetched without credentials by A2A clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    card_url: Option<String>,
    /// The JSON-RPC endpoint (A2A 1.0), called with a bearer token or API key of the tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint: Option<String>,
}

/// The agent (404 for an unknown id or another tenant's agent) and whether it is published.
async fn publication(
    state: &AppState,
    principal: &Principal,
    raw: &str,
) -> Result<(AgentId, Publication), ApiError> {
    let id = raw
        .parse::<Uuid>()
        .map(AgentId)
        .map_err(|_| ApiError::not_found("agent"))?;
    let agent = state.runtime.get_agent(principal.tenant, id).await?;
    let mut tx = principal
        .begin(&state.db)
        .await
        .map_err(ApiError::internal)?;
    let (tenant_slug, published): (String, bool) = sqlx::query_as(
        "SELECT slug, EXISTS (SELECT 1 FROM a2a_published_agents WHERE agent_id = $1) \
         FROM tenants",
    )
    .bind(id.0)
    .fetch_one(&mut *tx)
    .await
    .map_err(ApiError::internal)?;
    tx.commit().await.map_err(ApiError::internal)?;
    let endpoint = crate::a2a::endpoint(state, &tenant_slug, agent.slug.as_str());
    let view = Publication {
        published,
        card_url: published.then(|| format!("{endpoint}/{}", brain_tools::a2a::wire::CARD_PATH)),
        endpoint: published.then_some(endpoint),
    };
    Ok((id, view))
}

/// Whether the agent is published over A2A. Needs `agents:read`.
#[utoipa::path(get, path = "/v1/agents/{id}/a2a", tag = "agents",
    params(("id" = Uuid, Path, description = "The agent's id")),
    responses((status = 200, description = "The agent's A2A publication", body = Publication)))]
async fn show(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsRead>,
    Path(id): Path<String>,
) -> Result<Json<Publication>, ApiError> {
    Ok(Json(publication(&state, auth.principal(), &id).await?.1))
}

/// Publishes the agent over A2A: its card and JSON-RPC endpoint answer from now on (callers
/// still need a token or API key of the tenant). Needs `agents:write`.
#[utoipa::path(put, path = "/v1/agents/{id}/a2a", tag = "agents",
    params(("id" = Uuid, Path, description = "The agent's id")),
    responses((status = 200, description = "The agent is published", body = Publication)))]
async fn publish(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsWrite>,
    Path(id): Path<String>,
) -> Result<Json<Publication>, ApiError> {
    let principal = auth.principal();
    let (agent, _) = publication(&state, principal, &id).await?;
    let mut tx = principal
        .begin(&state.db)
        .await
        .map_err(ApiError::internal)?;
    sqlx::query(
        "INSERT INTO a2a_published_agents (agent_id, tenant_id) VALUES ($1, $2) \
         ON CONFLICT (agent_id) DO NOTHING",
    )
    .bind(agent.0)
    .bind(principal.tenant.0)
    .execute(&mut *tx)
    .await
    .map_err(ApiError::internal)?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(publication(&state, principal, &id).await?.1))
}

/// Stops publishing the agent: its card and endpoint answer 404. Needs `agents:write`.
#[utoipa::path(delete, path = "/v1/agents/{id}/a2a", tag = "agents",
    params(("id" = Uuid, Path, description = "The agent's id")),
    responses((status = 204, description = "No longer published")))]
async fn unpublish(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let principal = auth.principal();
    let (agent, _) = publication(&state, principal, &id).await?;
    let mut tx = principal
        .begin(&state.db)
        .await
        .map_err(ApiError::internal)?;
    sqlx::query("DELETE FROM a2a_published_agents WHERE agent_id = $1")
        .bind(agent.0)
        .execute(&mut *tx)
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(StatusCode::NO_CONTENT)
}
