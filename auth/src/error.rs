//! Errors of the auth crate.

use crate::secrets::SecretError;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("unknown role `{0}` (expected owner, admin, editor or viewer)")]
    UnknownRole(String),
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
