//! The public v1 API, one module per area. Ready for areas.
//!
//! Pattern for an area (e.g. `knowledge.rs`):
//! * `pub fn routes() -> OpenApiRouter<AppState>` (`utoipa_axum`) registering handlers with
//!   `.routes(routes!(list, create))` (one call per path); each handler carries
//!   `#[utoipa::path(method, path = "/v1/…", tag, params, request_body, responses)]` with
//!   absolute paths, and its request/response types derive `utoipa::ToSchema` (query structs
//!   `IntoParams`). That is how the route reaches `GET /openapi.json`; add
//!   `.merge(<area>::routes())` to [`router`] below and `mod <area>;` here.
//! * Handlers take `State(state): State<AppState>` and an extractor that states the permission
//!   in its type: `auth: Authorized<require::KnowledgeWrite>` (`brain_auth::{Authorized,
//!   require}`); `auth.principal().tenant` is the tenant, and `auth.principal().begin(&state.db)`
//!   opens a transaction inside it (RLS applies).
//! * Bodies through `ApiJson<T>` (`crate::error::ApiJson`, with `#[serde(deny_unknown_fields)]`
//!   on T): malformed JSON → 400, wrong content type → 415.
//! * Errors are `crate::error::ApiError` (`not_found`, `unprocessable(code, msg)`,
//!   `conflict`, `too_many_requests`, `internal(cause)`, …); map a library error enum with a
//!   `From<LibError> for ApiError`-like function in the area module. Another tenant's resource
//!   is a 404, never a 403.
//! * New shared handles (a service of your crate) go into `AppState` (`crate::state`) as an
//!   `Arc<…>` field, built in `crate::serve::app_state`.

mod a2a;
mod a2a_agents;
mod agents;
pub use agents::{MAX_MESSAGE_CHARS, turn_input};
mod audit;
mod connectors;
mod crews;
mod integrations;
mod knowledge;
mod mcp_servers;
mod model_keys;
mod openai;
mod tasks;
mod tenant;
mod usage;

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// Every v1 route with its OpenAPI description (`crate::openapi` finishes the document).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(brain_auth::service::api_keys_router())
        .merge(connectors::routes())
        .merge(audit::routes())
        .merge(agents::routes())
        .merge(a2a::routes())
        .merge(openai::routes())
        .merge(usage::routes())
        .merge(knowledge::routes())
        .merge(tasks::routes())
        .merge(integrations::routes())
        .merge(mcp_servers::routes())
        .merge(a2a_agents::routes())
        .merge(tenant::routes())
        .merge(model_keys::routes())
        .merge(crews::routes())
}

/// `If-Match: <version>` for optimistic concurrency, when the client sent one.
fn if_match(headers: &axum::http::HeaderMap) -> Result<Option<i32>, crate::error::ApiError> {
    headers
        .get(axum::http::header::IF_MATCH)
        .map(|v| {
            v.to_str()
                .ok()
                .map(|s| s.trim_matches('"'))
                .and_then(|s| s.parse::<i32>().ok())
                .ok_or_else(|| {
                    crate::error::ApiError::new(
                        crate::error::Code::InvalidIfMatch,
                        "If-Match must be a version number",
                    )
                })
        })
        .transpose()
}
