//! `/v1/tenant/providers…`: the tenant's own model provider keys (BYOK). A key is checked
//! with a live call before it is kept in Vault; responses show a masked hint, never the key.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use brain_agents::providers::keys::{ProviderKey, ProviderKeyView};
use brain_auth::secrets::SecretString;
use brain_auth::{Authorized, require};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::audit::with_details;
use crate::error::{ApiError, ApiJson};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(set, remove))
}

/// The tenant's providers, each with the key its calls use.
#[derive(serde::Serialize, ToSchema)]
struct ProviderList {
    providers: Vec<ProviderKeyView>,
}

/// A key of the tenant's own for one provider.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct KeyBody {
    /// Kept in Vault; never shown again (responses carry a masked hint).
    api_key: String,
    /// Another endpoint of the provider's API (an Azure OpenAI resource, a proxy); it must
    /// pass the deployment's egress policy (public HTTPS by default).
    base_url: Option<String>,
    /// Sent as `OpenAI-Organization` with every call.
    organization: Option<String>,
}

/// Every provider this Brain runs, with the key the tenant's calls use (`tenant`,
/// `deployment`, `missing` or `not_needed`). Needs `agents:read`.
#[utoipa::path(get, path = "/v1/tenant/providers", tag = "tenant",
    responses((status = 200, description = "The providers", body = ProviderList)))]
async fn list(
    State(state): State<AppState>,
    auth: Authorized<require::AgentsRead>,
) -> Result<Json<ProviderList>, ApiError> {
    let providers = state.model_keys.list(auth.principal().tenant).await?;
    Ok(Json(ProviderList { providers }))
}

/// Sets (or replaces) the tenant's key for a provider, after a cheap live call with it; a key
/// the provider refuses is not kept (422 `model_unauthorized`). The tenant's agents use it
/// from their next model call. Needs the `users.manage` permission (owner or admin).
#[utoipa::path(put, path = "/v1/tenant/providers/{provider}", tag = "tenant",
    params(("provider" = String, Path, description = "The provider, e.g. `openai`")),
    request_body = KeyBody,
    responses((status = 200, description = "The provider with the tenant's key",
        body = ProviderKeyView)))]
async fn set(
    State(state): State<AppState>,
    auth: Authorized<require::UsersManage>,
    Path(provider): Path<String>,
    ApiJson(body): ApiJson<KeyBody>,
) -> Result<Response, ApiError> {
    let key = ProviderKey {
        api_key: SecretString::new(body.api_key),
        base_url: body.base_url.filter(|u| !u.trim().is_empty()),
        organization: body.organization.filter(|o| !o.trim().is_empty()),
    };
    let view = state
        .model_keys
        .set(auth.principal().tenant, &provider, key)
        .await?;
    Ok(audited(view))
}

/// Forgets the tenant's key for a provider; its agents fall back to the deployment's key.
/// Needs the `users.manage` permission (owner or admin).
#[utoipa::path(delete, path = "/v1/tenant/providers/{provider}", tag = "tenant",
    params(("provider" = String, Path, description = "The provider, e.g. `openai`")),
    responses((status = 200, description = "The provider, now without the tenant's key",
        body = ProviderKeyView)))]
async fn remove(
    State(state): State<AppState>,
    auth: Authorized<require::UsersManage>,
    Path(provider): Path<String>,
) -> Result<Response, ApiError> {
    let view = state
        .model_keys
        .remove(auth.principal().tenant, &provider)
        .await?;
    Ok(audited(view))
}

/// The view, with the provider and the masked hint as the audit event's details.
fn audited(view: ProviderKeyView) -> Response {
    let details = json!({"provider": view.provider, "key_hint": view.key_hint});
    with_details(StatusCode::OK, view, details)
}
