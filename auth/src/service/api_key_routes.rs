//! `/v1/integrations/api-keys`: create, list and revoke the tenant's API keys. Served by the
//! gateway (any state that can authenticate and reach Postgres), not by the auth service.

use std::sync::Arc;

use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgPool;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::api_keys::{self, ApiKeyInfo};
use crate::audit::{self, AuditEvent, Recorded};
use crate::http::{ApiError, ApiJson};
use crate::{Actor, Authenticator, Authorized, Scope, require};

/// The API-key routes, for any state that can authenticate and reach Postgres (the gateway).
pub fn api_keys_router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Authenticator>: FromRef<S>,
    PgPool: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(list_api_keys, create_api_key))
        .routes(routes!(revoke_api_key))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateApiKeyRequest {
    /// 1 to 200 characters.
    name: String,
    /// At least one.
    #[schema(schema_with = api_keys::scopes_schema)]
    scopes: Vec<String>,
    /// In the future; without it the key never expires.
    expires_at: Option<DateTime<Utc>>,
}

/// A new key with the key itself, which is shown this once and never again.
#[derive(Serialize, ToSchema)]
struct CreatedApiKey {
    #[serde(flatten)]
    info: ApiKeyInfo,
    /// `bk_…`: send it as `Authorization: Bearer`.
    key: String,
}

/// The tenant's keys, revoked ones included.
#[derive(Serialize, ToSchema)]
struct ApiKeyList {
    api_keys: Vec<ApiKeyInfo>,
}

/// Creates an API key with the given scopes. Needs `api_keys.manage` (no API-key scope has it).
#[utoipa::path(post, path = "/v1/integrations/api-keys", tag = "api-keys",
    request_body = CreateApiKeyRequest,
    responses((status = 201, description = "The key, shown once", body = CreatedApiKey)))]
async fn create_api_key(
    State(db): State<PgPool>,
    auth: Authorized<require::ApiKeysManage>,
    ApiJson(body): ApiJson<CreateApiKeyRequest>,
) -> Result<Response, ApiError> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::invalid("name", "must be 1 to 200 characters"));
    }
    let scopes = body
        .scopes
        .iter()
        .map(|s| s.parse::<Scope>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::invalid("scopes", e))?;
    if scopes.is_empty() {
        return Err(ApiError::invalid("scopes", "give at least one"));
    }
    if body.expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(ApiError::invalid("expires_at", "must be in the future"));
    }
    let principal = auth.principal();
    let created_by = match principal.actor {
        Actor::User(id) => Some(id),
        Actor::ApiKey(_) => None,
    };
    let mut tx = principal.begin(&db).await?;
    let (info, key) = api_keys::create(
        &mut tx,
        principal.tenant,
        created_by,
        name,
        &scopes,
        body.expires_at,
    )
    .await?;
    let event = AuditEvent::by(
        principal.actor,
        "api_key.create",
        format!("api-keys/{}", info.id),
        json!({"name": info.name, "scopes": info.scopes}),
    );
    audit::append(&mut tx, principal.tenant, event).await?;
    tx.commit().await?;
    let body = CreatedApiKey { info, key };
    Ok((StatusCode::CREATED, Extension(Recorded), Json(body)).into_response())
}

/// The tenant's API keys (never the keys themselves). Needs `api_keys.manage`.
#[utoipa::path(get, path = "/v1/integrations/api-keys", tag = "api-keys",
    responses((status = 200, description = "Every key of the tenant", body = ApiKeyList)))]
async fn list_api_keys(
    State(db): State<PgPool>,
    auth: Authorized<require::ApiKeysManage>,
) -> Result<Json<ApiKeyList>, ApiError> {
    let mut tx = auth.principal().begin(&db).await?;
    let api_keys = api_keys::list(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(ApiKeyList { api_keys }))
}

/// Revokes an API key; it stops working at once. Needs `api_keys.manage`.
#[utoipa::path(delete, path = "/v1/integrations/api-keys/{id}", tag = "api-keys",
    params(("id" = Uuid, Path, description = "The key's id")),
    responses((status = 204, description = "Revoked")))]
async fn revoke_api_key(
    State(db): State<PgPool>,
    auth: Authorized<require::ApiKeysManage>,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let principal = auth.principal();
    let mut tx = principal.begin(&db).await?;
    if !api_keys::revoke(&mut tx, id).await? {
        return Err(ApiError::not_found("api key"));
    }
    let event = AuditEvent::by(
        principal.actor,
        "api_key.revoke",
        format!("api-keys/{id}"),
        json!({}),
    );
    audit::append(&mut tx, principal.tenant, event).await?;
    tx.commit().await?;
    Ok((StatusCode::NO_CONTENT, Extension(Recorded)).into_response())
}
