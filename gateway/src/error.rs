//! The API's error type. It is defined in `brain_auth::http` because the auth service answers
//! in the same shape; the gateway adds its fallback for unknown routes.

pub use brain_auth::http::{ApiError, ApiJson, ApiQuery, Code, InternalCause};

/// Fallback for unknown routes, in the API's error shape.
pub async fn not_found(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        brain_auth::Code::NotFound,
        format!("no route for {method} {}", uri.path()),
    )
}
