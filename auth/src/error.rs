//! Errors of the auth crate.

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("unknown role `{0}` (expected owner, admin, editor or viewer)")]
    UnknownRole(String),
    #[error("password hashing failed: {0}")]
    PasswordHash(String),
}
