//! The error type of the connector library, with a stable `code()` per kind for the API edge.
//!
//! No variant ever carries a credential: platform messages are passed through
//! [`crate::transport`]'s redaction before they get here, and transport failures drop the URL.

use std::time::Duration;

use brain_auth::secrets::SecretError;
use brain_auth::{Code, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("unknown connector `{0}`")]
    UnknownConnector(String),
    #[error("connector `{connector}` has no action `{action}`")]
    UnknownAction { connector: String, action: String },
    #[error("connector `{connector}` has no resource `{resource}`")]
    UnknownResource { connector: String, resource: String },
    #[error("no tool grant for connector `{connector}` on this agent")]
    GrantNotFound { connector: String },
    #[error("the grant for `{connector}` was revoked or changed; the call was refused")]
    GrantRevoked { connector: String },
    #[error("action `{action}` of `{connector}` is not granted to this agent")]
    ActionNotGranted { connector: String, action: String },
    #[error("invalid arguments for `{tool}`: {message}")]
    InvalidArguments { tool: String, message: String },
    #[error("invalid credentials for `{connector}`: {message}")]
    InvalidCredentials { connector: String, message: String },
    #[error("connector `{0}` is not connected")]
    NotConnected(String),
    #[error("`{connector}` rejected the stored credentials (HTTP {status})")]
    Unauthorized { connector: String, status: u16 },
    #[error("`{connector}` is rate limiting requests; retry later")]
    RateLimited {
        connector: String,
        retry_after: Option<Duration>,
    },
    #[error("`{connector}` answered HTTP {status}: {message}")]
    Platform {
        connector: String,
        status: u16,
        message: String,
    },
    #[error("`{connector}` could not be reached: {reason}")]
    Unreachable { connector: String, reason: String },
    /// The address is one Brain's egress policy does not connect to (loopback, private,
    /// link-local, plain http in production, …); nothing was sent.
    #[error("`{connector}`: {reason}")]
    EgressRefused { connector: String, reason: String },
    #[error("`{connector}` sent a response Brain could not read: {reason}")]
    BadResponse { connector: String, reason: String },
    #[error("a call with idempotency key `{0}` is still in progress")]
    IdempotencyInProgress(String),
    #[error("idempotency key `{0}` was already used with different arguments")]
    IdempotencyConflict(String),
    /// An earlier attempt of this write was abandoned mid-call and the platform cannot say
    /// whether it happened; writing again could duplicate it, so Brain does not.
    #[error("an earlier attempt of `{connector}.{action}` may have written already; not repeated")]
    AmbiguousWrite { connector: String, action: String },
    #[error("webhook signature rejected: {0}")]
    InvalidSignature(String),
    /// Unknown id, another tenant's, or disabled: all look the same from outside.
    #[error("webhook not found")]
    WebhookNotFound,
    #[error("invalid webhook: {0}")]
    InvalidWebhook(String),
    /// A delivery whose signature checked out but which Brain cannot use (not JSON, no
    /// delivery id, no event name).
    #[error("malformed webhook delivery: {0}")]
    MalformedDelivery(String),
    #[error("webhook delivery not found")]
    DeliveryNotFound,
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("cache error")]
    Cache(#[from] redis::RedisError),
    #[error("secret store error")]
    Secrets(#[from] SecretError),
    #[error("invalid MCP server: {0}")]
    InvalidMcpServer(String),
    #[error("MCP server not found")]
    McpServerNotFound,
    #[error("an MCP server with slug `{0}` already exists")]
    McpSlugTaken(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ErrorCode for ToolError {
    fn code(&self) -> Code {
        match self {
            ToolError::UnknownConnector(_) => Code::UnknownConnector,
            ToolError::UnknownAction { .. } => Code::UnknownAction,
            ToolError::UnknownResource { .. } => Code::UnknownResource,
            ToolError::GrantNotFound { .. } => Code::GrantNotFound,
            ToolError::GrantRevoked { .. } => Code::GrantRevoked,
            ToolError::ActionNotGranted { .. } => Code::ActionNotGranted,
            ToolError::InvalidArguments { .. } => Code::InvalidArguments,
            ToolError::InvalidCredentials { .. } => Code::InvalidConnectorCredentials,
            ToolError::NotConnected(_) => Code::NotConnected,
            ToolError::Unauthorized { .. } => Code::ConnectorUnauthorized,
            ToolError::RateLimited { .. } => Code::ConnectorRateLimited,
            ToolError::Platform { .. } => Code::ConnectorError,
            ToolError::Unreachable { .. } => Code::ConnectorUnreachable,
            ToolError::EgressRefused { .. } => Code::EgressRefused,
            ToolError::BadResponse { .. } => Code::ConnectorBadResponse,
            ToolError::IdempotencyInProgress(_) => Code::IdempotencyInProgress,
            ToolError::IdempotencyConflict(_) => Code::IdempotencyConflict,
            ToolError::AmbiguousWrite { .. } => Code::AmbiguousWrite,
            ToolError::InvalidSignature(_) => Code::InvalidSignature,
            ToolError::WebhookNotFound => Code::WebhookNotFound,
            ToolError::InvalidWebhook(_) => Code::InvalidWebhook,
            ToolError::MalformedDelivery(_) => Code::MalformedDelivery,
            ToolError::DeliveryNotFound => Code::DeliveryNotFound,
            ToolError::InvalidMcpServer(_) => Code::ValidationFailed,
            ToolError::McpServerNotFound => Code::NotFound,
            ToolError::McpSlugTaken(_) => Code::SlugTaken,
            ToolError::Database(e) => e.code(),
            ToolError::Cache(_) | ToolError::Secrets(_) | ToolError::Internal(_) => Code::Internal,
        }
    }

    /// The platform's `Retry-After`, or half a minute when it gave none.
    fn retry_after(&self) -> Option<u64> {
        match self {
            ToolError::RateLimited { retry_after, .. } => {
                Some(retry_after.map_or(30, |d| d.as_secs()))
            }
            _ => None,
        }
    }
}

impl ToolError {
    /// Whether the caller sent something wrong (4xx at the API) rather than Brain or the
    /// platform failing.
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            ToolError::UnknownConnector(_)
                | ToolError::UnknownAction { .. }
                | ToolError::UnknownResource { .. }
                | ToolError::GrantNotFound { .. }
                | ToolError::GrantRevoked { .. }
                | ToolError::ActionNotGranted { .. }
                | ToolError::InvalidArguments { .. }
                | ToolError::InvalidCredentials { .. }
                | ToolError::EgressRefused { .. }
                | ToolError::NotConnected(_)
                | ToolError::IdempotencyInProgress(_)
                | ToolError::IdempotencyConflict(_)
                | ToolError::InvalidSignature(_)
                | ToolError::WebhookNotFound
                | ToolError::InvalidWebhook(_)
                | ToolError::MalformedDelivery(_)
                | ToolError::DeliveryNotFound
        )
    }
}
