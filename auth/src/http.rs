//! The HTTP error shape every Brain service answers with:
//! `{"error": {"code": "snake_case_code", "message": "human sentence"}}` and the right status.
//! Internal causes travel to the logging middleware in response extensions, never to clients.

use std::sync::Arc;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub use brain_types::Code;

/// An error that knows its place in the catalogue. Library errors implement it, and `?` in a
/// handler turns one into an [`ApiError`]: the code's status, the error's own message — or,
/// for a 500/503, the code's description, with the error kept for the logs.
pub trait ErrorCode: std::error::Error + Send + Sync + 'static {
    fn code(&self) -> Code;

    /// Seconds the client should wait before retrying (`Retry-After`), if the error says.
    fn retry_after(&self) -> Option<u64> {
        None
    }
}

#[derive(Debug)]
pub struct ApiError {
    code: Code,
    message: String,
    retry_after: Option<u64>,
    cause: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

/// The hidden cause of a 5xx, for the logging layer.
#[derive(Clone, Debug)]
pub struct InternalCause(pub Arc<dyn std::error::Error + Send + Sync>);

impl ApiError {
    /// An answer with `code`'s status and this message (which the client sees).
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
            cause: None,
        }
    }

    /// 422 `validation_failed` naming the field.
    pub fn invalid(field: &str, message: impl std::fmt::Display) -> Self {
        Self::new(Code::ValidationFailed, format!("{field}: {message}"))
    }

    /// 401: no or invalid credentials. The message never says which check failed.
    pub fn unauthorized() -> Self {
        Self::new(Code::Unauthorized, "missing or invalid credentials")
    }

    /// 403: authenticated, but the role or API-key scope does not allow this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(Code::Forbidden, message)
    }

    /// 404; also the answer for another tenant's resources, so existence never leaks.
    pub fn not_found(what: &str) -> Self {
        Self::new(Code::NotFound, format!("{what} not found"))
    }

    /// Adds `Retry-After` (at least a second) to the answer.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    /// 429 `rate_limited` with `Retry-After`.
    pub fn too_many_requests(retry_after_secs: u64, message: impl Into<String>) -> Self {
        Self::new(Code::RateLimited, message).with_retry_after(retry_after_secs)
    }

    /// 500; the cause is logged, the client sees "internal error".
    pub fn internal(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::hidden(Code::Internal, Arc::new(cause))
    }

    /// 503: a dependency is down; the cause is logged.
    pub fn unavailable(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::hidden(Code::Unavailable, Arc::new(cause))
    }

    fn hidden(code: Code, cause: Arc<dyn std::error::Error + Send + Sync>) -> Self {
        let mut e = Self::new(code, code.description());
        e.cause = Some(cause);
        e
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn code(&self) -> Code {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl<E: ErrorCode> From<E> for ApiError {
    fn from(e: E) -> Self {
        let code = e.code();
        let retry_after = e.retry_after();
        let mut answer = if code.hides_cause() {
            Self::hidden(code, Arc::new(e))
        } else {
            Self::new(code, e.to_string())
        };
        answer.retry_after = retry_after.map(|s| s.max(1));
        answer
    }
}

impl ErrorCode for crate::FieldError {
    fn code(&self) -> Code {
        Code::ValidationFailed
    }
}

impl ErrorCode for sqlx::Error {
    fn code(&self) -> Code {
        match self {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => Code::Unavailable,
            _ => Code::Internal,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.status(), self.code, self.message)
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Detail {
                code: self.code.as_str(),
                message: &self.message,
            },
        };
        let mut response = (self.status(), Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(cause) = self.cause {
            response.extensions_mut().insert(InternalCause(cause));
        }
        response
    }
}

/// JSON bodies: malformed JSON and unknown fields are 400 with the parser's reason, the wrong
/// content type is 415 — in the API's error shape rather than axum's plain text.
pub struct ApiJson<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        use axum::extract::rejection::JsonRejection;
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::new(
                Code::UnsupportedMediaType,
                "expected Content-Type: application/json",
            )),
            Err(JsonRejection::JsonDataError(e)) => {
                Err(ApiError::new(Code::InvalidBody, e.body_text()))
            }
            Err(JsonRejection::JsonSyntaxError(e)) => {
                Err(ApiError::new(Code::MalformedJson, e.body_text()))
            }
            Err(JsonRejection::BytesRejection(e)) => Err(ApiError::new(
                match e.status() {
                    StatusCode::PAYLOAD_TOO_LARGE => Code::PayloadTooLarge,
                    _ => Code::BodyRejected,
                },
                e.body_text(),
            )),
            Err(e) => Err(ApiError::new(Code::InvalidBody, e.body_text())),
        }
    }
}

/// Query strings: an unknown parameter or a value of the wrong type is a 400 in the API's
/// error shape, naming the problem, rather than axum's plain text.
pub struct ApiQuery<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(e) => Err(ApiError::new(Code::InvalidQuery, e.body_text())),
        }
    }
}
