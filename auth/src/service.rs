//! The auth service's HTTP router (port 8009).

use axum::Router;
use axum::routing::get;

/// Routes served by the auth service. Signup, login, tokens and users join here.
pub fn router() -> Router {
    Router::new().route("/healthz", get(|| async { "ok" }))
}
