//! Errors of the auth crate.

use crate::secrets::SecretError;

/// A field of a request that failed validation — the one validation error of every crate.
/// `field` names it as the client wrote it (`temperature`, `steps.1.connector_action.action`);
/// the API answers 422 `validation_failed` with "field: message".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    UnknownRole(#[from] brain_types::UnknownRole),
    #[error("password hashing failed: {0}")]
    PasswordHash(String),
    #[error("signing key material is missing or unreadable")]
    KeyMaterial,
    #[error("fetching the JWKS failed: {0}")]
    Jwks(String),
    #[error("invalid or expired token")]
    InvalidToken,
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
}

impl crate::ErrorCode for AuthError {
    fn code(&self) -> crate::Code {
        use crate::Code;
        match self {
            AuthError::InvalidToken => Code::Unauthorized,
            AuthError::Jwks(_) => Code::Unavailable,
            AuthError::Sql(e) => crate::ErrorCode::code(e),
            _ => Code::Internal,
        }
    }
}
